"""Resident memory of a process and its descendants: what a sweep (parent + workers) holds.

Summing RSS over the processes of a sweep counts the shared library pages (torch's ~1 GB of
.so files, mapped by every worker) once per process; PSS (proportional set size, Linux's
``/proc/PID/smaps_rollup``) divides each shared page among the processes that map it, so the
sum of PSS is what the tree costs the machine. Both are sampled; PSS is the figure a laptop's
memory must hold. Off Linux, or where smaps_rollup is not readable, PSS is None.

``python -m xraygan.proctree -- CMD ...`` runs a command and prints its tree's peak as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROC = Path("/proc")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's children list)."""
    out: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += children(p)
    return seen


def _kib(text: str, key: str) -> int | None:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def process_memory(pid: int) -> tuple[int, int | None] | None:
    """(RSS, PSS) bytes of one process; None when it is gone."""
    try:
        rollup = (PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        rollup = ""
    if rollup:
        rss, pss = _kib(rollup, "Rss"), _kib(rollup, "Pss")
        if rss is not None:
            return rss * 1024, None if pss is None else pss * 1024
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    rss = _kib(status, "VmRSS")
    return None if rss is None else (rss * 1024, None)


@dataclass
class TreeMemory:
    rss_bytes: int = 0  # sum of RSS: shared pages counted once per process
    pss_bytes: int | None = 0  # sum of PSS: shared pages divided among their processes
    processes: int = 0


def tree_memory(pid: int | None = None) -> TreeMemory:
    """The memory of ``pid`` (default: this process) and its descendants, now."""
    got = TreeMemory()
    for p in tree(pid or os.getpid()):
        m = process_memory(p)
        if m is None:
            continue
        got.rss_bytes += m[0]
        got.pss_bytes = None if got.pss_bytes is None or m[1] is None else got.pss_bytes + m[1]
        got.processes += 1
    return got


class PeakSampler:
    """Samples :func:`tree_memory` every ``interval`` s from a thread; ``peak()`` is the largest
    PSS sum seen (RSS where PSS is unavailable), with the RSS sum and process count of then."""

    def __init__(self, pid: int | None = None, interval: float = 0.5) -> None:
        self.pid, self.interval = pid or os.getpid(), interval
        self.best = TreeMemory()
        self.best_rss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-memory")

    def _key(self, m: TreeMemory) -> int:
        return m.pss_bytes if m.pss_bytes is not None else m.rss_bytes

    def sample(self) -> None:
        m = tree_memory(self.pid)
        self.samples += 1
        self.best_rss = max(self.best_rss, m.rss_bytes)
        if self._key(m) > self._key(self.best):
            self.best = m

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def peak(self) -> dict[str, object]:
        """JSON-ready: peak PSS sum (None off Linux), the largest RSS sum, processes, method."""
        return {"peak_pss_bytes": self.best.pss_bytes, "peak_rss_bytes": self.best_rss,
                "processes_at_peak": self.best.processes, "samples": self.samples,
                "interval_s": self.interval,
                "method": "sum over the process tree of /proc/PID/smaps_rollup Pss (and Rss)"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m xraygan.proctree -- CMD [ARGS...]", file=sys.stderr)
        return 2
    t = time.perf_counter()
    proc = subprocess.Popen(args)
    sampler = PeakSampler(proc.pid)
    with sampler:
        rc = proc.wait()
    print(json.dumps({**sampler.peak(), "exit": rc, "wall_s": round(time.perf_counter() - t, 1),
                      "at_peak": asdict(sampler.best)}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
