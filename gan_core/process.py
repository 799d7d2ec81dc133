"""Process-level settings, owned by the entry points (the CLI, the sweep worker), never by the
trainer: intra-op threads, the OpenMP wait policy, glibc's allocator thresholds, and the
SIGINT/SIGTERM handlers that let a run checkpoint before it stops.

This module must not import torch at import time: ``set_wait_policy`` has to run before the
first import of torch (libgomp reads ``OMP_WAIT_POLICY`` once, when it loads).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .lazy import lazy_module
from .models import build_models, count_parameters

torch = lazy_module("torch")

# --------------------------------------------------------------------------- stop on signals
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
"""Signals that checkpoint and stop a run: Ctrl-C, kill / a scheduler's stop, and SIGHUP
(the terminal closed: an ssh session dropped), which would otherwise kill it unsaved."""


def signal_exit_code(name: str | None) -> int:
    """The shell's exit status for a run stopped by signal ``name``: 128 + its number
    (SIGHUP 129, SIGINT 130, SIGTERM 143); 130 when the name is unknown."""
    try:
        return 128 + int(signal.Signals[name])  # type: ignore[misc]
    except (KeyError, TypeError):
        return 130


class StopRequested(KeyboardInterrupt):
    """A run stopped by ``signal`` (its name) after checkpointing: raised through the layers
    above the training loop (a sweep's trial), so the entry point exits with
    :func:`signal_exit_code` of it."""

    def __init__(self, signal_name: str | None) -> None:
        super().__init__(signal_name or "SIGINT")
        self.signal = signal_name or "SIGINT"


class StopFlag:
    """SIGINT/SIGTERM/SIGHUP set a flag; ``flag()`` returns the signal's name (or None), so a loop that
    polls it checkpoints after the current step and returns. A second signal raises
    KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.raised: str | None = None

    def __call__(self) -> str | None:
        return self.raised

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        def handler(signum: int, frame: object) -> None:
            if self.raised:  # second signal: stop now
                raise KeyboardInterrupt
            self.raised = signal.Signals(signum).name

        try:
            old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
        except ValueError:  # not the main thread (e.g. an Optuna worker thread): no handlers
            yield self
            return
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def stop_on_signals() -> contextlib.AbstractContextManager[StopFlag]:
    """``with stop_on_signals() as stop: train(cfg, should_stop=stop)``."""
    return StopFlag().installed()


# --------------------------------------------------------------------------- allocator
# A DCGAN step at 64x64, batch 64 allocates activation maps of tens of MB. glibc serves blocks
# above M_MMAP_THRESHOLD (dynamic, capped at 32 MiB) with a fresh mmap and returns them with
# munmap on free, and trims the heap top above M_TRIM_THRESHOLD: every step then faults its
# temporaries in page by page again. Raising both keeps the pages mapped between steps. The
# environment variables MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ do the same but are read
# only at process start; mallopt sets them at run time. Numerics are untouched; the cost is that
# the process keeps its peak heap. XRAYGAN_MALLOC_TUNE=0 turns it off.
M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 30  # blocks up to 1 GiB come from the heap, not a fresh mmap
TRIM_THRESHOLD_BYTES = 1 << 31  # keep up to 2 GiB of free heap top mapped
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

_malloc: str | None = None  # "mallopt" | "environment" | "off" | "unavailable"; None: not yet


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # musl and others have no mallopt
        return None
    return libc


def tune_malloc(enabled: bool | None = None) -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they are in effect.

    ``enabled=None`` reads ``XRAYGAN_MALLOC_TUNE`` (default on). Leaves thresholds the user set
    through the environment at process start alone; a no-op off Linux/glibc.
    """
    global _malloc
    if enabled is None:
        enabled = os.environ.get("XRAYGAN_MALLOC_TUNE", "1").lower() not in ("0", "false", "no", "off")
    if _malloc in ("mallopt", "environment"):
        return True
    if not enabled:
        _malloc = _malloc or "off"
        return False
    if any(k in os.environ for k in MALLOC_ENV):
        _malloc = "environment"  # the user chose at process start: leave their values
        return True
    libc = _libc()
    if libc is None:
        _malloc = "unavailable"
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    _malloc = "mallopt" if ok else "unavailable"
    return ok


def trim_malloc() -> bool:
    """Return the free heap to the OS now (glibc ``malloc_trim(0)``); True when it released
    some. The raised trim threshold above keeps a training step's pages mapped between steps;
    after a phase whose peak will not come back (Inception features of a whole image set, a
    model dropped) this hands its pages back, so a sweep's processes do not each keep their
    largest moment for the rest of the sweep. A no-op off glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    return bool(libc.malloc_trim(0))


# --------------------------------------------------------------------------- cores
def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup"),
                      proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 cpu.max, v1 cfs_quota_us), None if unlimited.

    A container limited to 2 CPUs on a 64-core host sees 64 in its affinity mask; sizing the
    thread pool from that oversubscribes the quota and the step stalls at every period end.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.count(":") < 2:
            continue
        _, controllers, rel = line.split(":", 2)
        rel = rel.lstrip("/")
        try:
            if controllers == "":  # v2 unified hierarchy
                path = root / rel / "cpu.max"
                if path.exists():
                    quota, period = path.read_text().split()[:2]
                    if quota != "max":
                        return int(quota) / int(period)
            elif "cpu" in controllers.split(","):
                for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                    base = root / name / rel
                    if (base / "cpu.cfs_quota_us").exists():
                        quota = int((base / "cpu.cfs_quota_us").read_text())
                        period = int((base / "cpu.cfs_period_us").read_text())
                        if quota > 0 and period > 0:
                            return quota / period
                        break
        except (OSError, ValueError):
            continue
    return None


def _cgroup_quota() -> float | None:
    return cgroup_cpu_quota()


def cores_available() -> int:
    """Whole CPUs this process may run on: its affinity mask, capped by the cgroup quota
    (a quota of 1.5 CPUs runs two busy threads at 75 %: count whole CPUs, never below one)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    quota = _cgroup_quota()
    return min(affinity, max(1, int(quota))) if quota else affinity


def _cpu_times(stat: Path = Path("/proc/stat")) -> dict[int, tuple[int, int]]:
    """Per CPU (busy, total) jiffies since boot, from ``/proc/stat``; empty where unreadable."""
    out: dict[int, tuple[int, int]] = {}
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        v = [int(x) for x in rest.split()]
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        total = sum(v[:8])  # guest time is already inside user/nice
        out[int(name[3:])] = (total - idle, total)
    return out


BUSY_SAMPLE_S = 0.5  # long enough to see a busy neighbour through the scheduler's slices
BUSY_CORE = 0.6  # a core this busy (fraction of the sample) counts as taken by a neighbour


def busy_cores(sample_s: float = BUSY_SAMPLE_S,
               times: Callable[[], dict[int, tuple[int, int]]] = _cpu_times,
               sleep: Callable[[float], None] | None = None) -> float:
    """CPU-seconds per second that *other* processes use on this process's CPUs, over
    ``sample_s`` (0.0 where /proc/stat cannot be read). Call while this process is idle (at
    start, before the first step): then every busy jiffy is a neighbour's."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        cpus = None
    a = times()
    (sleep or time.sleep)(sample_s)
    b = times()
    busy = 0.0
    for cpu, (busy_b, total_b) in b.items():
        if (cpus is not None and cpu not in cpus) or cpu not in a:
            continue
        dt = total_b - a[cpu][1]
        if dt > 0:
            busy += (busy_b - a[cpu][0]) / dt
    return busy


def free_cores(cores: int, busy: float) -> int:
    """Cores left to this process when neighbours use ``busy`` CPU-seconds per second of its
    ``cores``: a core counts as taken from :data:`BUSY_CORE` of one busy on; never below one."""
    taken = int(busy + (1.0 - BUSY_CORE))
    return max(1, min(cores, cores - taken))


# --------------------------------------------------------------------------- wait policy
WAIT_ENV = "OMP_WAIT_POLICY"
SPIN_ENV = "GOMP_SPINCOUNT"
SPIN_COUNT = "10000"  # iterations a waiting OpenMP thread spins before it sleeps
_wait: dict[str, str | None] = {}


def set_wait_policy(value: str | None = None) -> str | None:
    """Choose libgomp's wait policy; call before torch is imported (libgomp reads it once, at
    load). An explicit user setting always wins. ``value=None`` keeps libgomp's default
    (spin about 300,000 iterations, then sleep): 9 % faster than PASSIVE at 2 threads on quiet
    cores (AVX2 EPYC); under load PASSIVE held up better in benchmarks/test_bench_load.py, where
    the governor's drop to 1 thread is the remedy. Returns the value in effect."""
    if _wait:
        return _wait["value"]
    user = os.environ.get(WAIT_ENV)
    if user:
        _wait.update(value=user, source="user")
    elif value:
        os.environ[WAIT_ENV] = value
        _wait.update(value=value, source="xraygan")
    else:
        _wait.update(value=None, source="libgomp default")
        # libgomp spins 300,000 iterations before a waiting thread sleeps: next to two busy
        # processes on 2 cores that spin eats the time slices and a 2-thread step took ~2 s
        # (0.04-0.06x of quiet, benchmarks/test_bench_load.py); 10,000 kept 0.38-0.52x there,
        # with the governor 0.71x next to one neighbour. A user's GOMP_SPINCOUNT wins.
        if SPIN_ENV not in os.environ:
            os.environ[SPIN_ENV] = SPIN_COUNT
            _wait.update(spincount=SPIN_COUNT, spincount_source="xraygan")
        else:
            _wait.update(spincount=os.environ[SPIN_ENV], spincount_source="user")
    _wait["before_torch"] = "torch" not in sys.modules  # else libgomp already read it
    return _wait["value"]


# --------------------------------------------------------------------------- the policy
_settings: dict[str, object] = {}
_governor: ThreadGovernor | None = None


def threads_for(cores: int, workers: int = 1, model_size_hint: int | None = None) -> int:
    """Intra-op threads per process: the cores shared among the workers (workers x threads =
    cores), one thread for models too small to split (``model_size_hint``: parameters of G+D)."""
    per_worker = max(1, cores // max(1, workers))
    if model_size_hint is not None and model_size_hint < SMALL_MODEL_PARAMS:
        return 1
    return per_worker


SMALL_MODEL_PARAMS = 50_000  # below: a step is dominated by per-op overhead, not by FLOPs


def apply_process_policy(
    role: str = "cli",
    model_size_hint: int | None = None,
    workers: int = 1,
    *,
    threads: int | None = None,
    adaptive: bool | None = None,
    resume_threads: int | None = None,
    detect_neighbours: bool | None = None,
) -> dict[str, object]:
    """Apply the process-level settings once for an entry point and return what was applied.

    role: "train" (a training process), "sweep-worker" (one of ``workers`` processes sharing the
    cores), "cli" (any other command). Threads: ``threads``, else ``XRAYGAN_THREADS``, else the
    user's ``OMP_NUM_THREADS``, else :func:`threads_for`; fixed for the life of the process.

    ``adaptive`` (default: ``XRAYGAN_ADAPTIVE_THREADS=1``, off otherwise) lets
    :func:`governor_tick` move between thread counts when a neighbour takes a core. It is
    opt-in because it changes the arithmetic: a reduction split over 2 threads rounds
    differently from one over 1, so the same seed gives another run (the D loss of two
    identical 2-thread runs parted at step 7 with it). The applied settings then say
    ``reproducible: False``, and the run's summary records it (docs/reproducibility.md).

    Without the governor, a training process whose thread count comes from the policy picks it
    once, at start, from the cores neighbours leave free (:func:`busy_cores`, half a second of
    /proc/stat; ``detect_neighbours``, default on for "train" and "sweep-worker" unless
    ``XRAYGAN_DETECT_NEIGHBOURS=0``): two threads
    beside one busy process on 2 cores ran at 0.32x of quiet, one thread on the free core keeps
    more than half. The count is fixed for the run and recorded (summary.json ``threads``), so
    the same seed at the same count gives the same run; ``resume_threads`` (the count a resumed
    run recorded) is kept over a new choice. A line on stderr says when a neighbour was found.
    """
    global _governor
    if role not in ("train", "sweep-worker", "cli"):
        raise ValueError(f"role: expected train, sweep-worker or cli, got {role!r}")
    set_wait_policy()

    cores = cores_available()
    source = "argument"
    if threads is None:
        env = os.environ.get("XRAYGAN_THREADS") or os.environ.get("OMP_NUM_THREADS")
        if env and env.strip().isdigit() and int(env) > 0:
            threads, source = int(env), "XRAYGAN_THREADS" if os.environ.get("XRAYGAN_THREADS") else "OMP_NUM_THREADS"
        elif resume_threads:
            threads, source = int(resume_threads), "resumed run"
        else:
            threads, source = threads_for(cores, workers, model_size_hint), "policy"
    threads = max(1, min(int(threads), cores))  # never more threads than cores
    if adaptive is None:
        adaptive = (adaptive_wanted() and role in ("train", "sweep-worker")
                    and source == "policy" and threads > 1)
    busy = None
    if detect_neighbours is None:
        detect_neighbours = (role in ("train", "sweep-worker")
                             and os.environ.get(NEIGHBOURS_ENV, "").strip() != "0")
    if detect_neighbours and source == "policy" and threads > 1 and not adaptive:
        busy = busy_cores()
        free = free_cores(cores, busy)
        if free < threads:
            print(f"xraygan: other processes keep {busy:.1f} of {cores} cores busy: "
                  f"{free} thread{'s' if free > 1 else ''} instead of {threads} for this run "
                  "(chosen once, recorded in its summary; XRAYGAN_THREADS=N fixes it)",
                  file=sys.stderr, flush=True)
            threads, source = free, "policy, free cores at start"
    torch.set_num_threads(threads)
    _governor = ThreadGovernor(threads) if adaptive and threads > 1 else None
    _settings.clear()
    _settings.update(
        role=role, workers=workers, cores_available=cores, threads=threads,
        threads_source=source, neighbours_busy_cores=None if busy is None else round(busy, 2), adaptive=bool(_governor), reproducible=not _governor,
        OMP_WAIT_POLICY=_wait.get("value"), wait_policy_source=_wait.get("source"),
        GOMP_SPINCOUNT=_wait.get("spincount"),
        wait_policy_before_torch=_wait.get("before_torch"),
    )
    tune_malloc()
    _settings["malloc"] = _malloc
    return applied_settings()


ADAPTIVE_ENV = "XRAYGAN_ADAPTIVE_THREADS"
NEIGHBOURS_ENV = "XRAYGAN_DETECT_NEIGHBOURS"  # "0": the policy's count whatever the load


def adaptive_wanted() -> bool:
    """The user opted into the adaptive thread governor (``XRAYGAN_ADAPTIVE_THREADS=1``)."""
    return os.environ.get(ADAPTIVE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def reproducibility() -> dict[str, object]:
    """What a run records about its own reproducibility: the intra-op threads (fixed at process
    start; the same seed reproduces a run at the same count on the same machine class) and
    whether a speed policy that changes the arithmetic was on."""
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    adaptive = bool(_governor)
    out: dict[str, object] = {"threads": threads, "reproducible": not adaptive}
    if _settings.get("threads_source"):
        out["threads_source"] = _settings["threads_source"]
    if adaptive:
        out["not_reproducible_because"] = (f"{ADAPTIVE_ENV}=1: the thread governor changes the "
                                           "thread count, and with it the rounding, mid-run")
    return out


def applied_settings() -> dict[str, object]:
    """What :func:`apply_process_policy` applied (empty before), with the thread count now in
    effect and the adaptive governor's switches; the fingerprint records it."""
    out = dict(_settings)
    if "torch" in sys.modules:
        out["threads_now"] = sys.modules["torch"].get_num_threads()
    if _governor is not None:
        out["governor"] = _governor.state()
    return out


def governor_tick(step: int | None = None) -> None:
    """Call after every training step (after its device sync); a no-op without an adaptive
    policy."""
    if _governor is not None:
        _governor.tick()


# --------------------------------------------------------------------------- adaptive threads
class ThreadGovernor:
    """Pick the intra-op thread count by measured step time, again whenever it changes.

    Why: with N threads on N cores, one busy neighbour process leaves a parallel region waiting
    at its barrier for the thread the scheduler parked, and throughput collapses (2 threads next
    to one busy process: a third of their quiet speed; 1 thread: about 0.9x, on an AVX2 EPYC). Which
    count wins depends on the load, and the load changes, so the governor measures: it times
    windows of steps (at least ``window_s`` seconds and 2 steps); on the first window, when the
    median step time drifts by more than ``drift`` from the one measured when the count was
    chosen, or every ``interval`` seconds (doubling up to ``max_interval`` while the choice
    stands) it times ``probe_steps`` steps at each other candidate count (the first step after a
    switch discarded) and keeps the fastest; it switches only for a gain of 5 % or more.
    """

    def __init__(self, max_threads: int, *, window_s: float = 1.0, probe_steps: int = 2,
                 drift: float = 0.25, interval: float = 10.0, max_interval: float = 160.0,
                 clock=None, set_threads=None) -> None:
        self.clock = clock or time.perf_counter
        self._set_threads = set_threads
        self.candidates = sorted({max_threads, max(1, max_threads // 2), 1}, reverse=True)
        self.current = max_threads
        self.window_s, self.probe_steps, self.drift = window_s, probe_steps, drift
        self.min_interval, self.max_interval = interval, max_interval
        self.interval = interval
        self.reference: float | None = None  # median step time when `current` was chosen
        self.window: list[float] = []
        self.probing: list[int] = []  # counts still to time in this probe
        self.probe_med: dict[int, float] = {}
        self.probe_times: list[float] = []
        # None until the first step ends: the time before it (model building, data loading,
        # oneDNN's first-call setup) is no step time and once made 1 thread look 13x faster
        self.last: float | None = None
        self.last_probe: float | None = None
        self.switches = 0
        self.probes = 0

    def state(self) -> dict[str, object]:
        return {"threads": self.current, "switches": self.switches, "probes": self.probes}

    def _set(self, n: int) -> None:
        if self._set_threads is not None:
            self._set_threads(n)
            return

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def tick(self) -> None:
        now = self.clock()
        if self.last is None:
            self.last = now
            return
        dt, self.last = now - self.last, now
        if self.probing:
            self.probe_times.append(dt)
            if len(self.probe_times) > self.probe_steps:  # the first one after a switch: dropped
                times = sorted(self.probe_times[1:])
                self.probe_med[self.probing.pop(0)] = times[len(times) // 2]
                self.probe_times = []
                if self.probing:
                    self._set(self.probing[0])
                else:
                    self._decide(now)
            return
        self.window.append(dt)
        if sum(self.window) < self.window_s or len(self.window) < 3:
            return
        median = sorted(self.window)[len(self.window) // 2]
        self.window = []
        since = None if self.last_probe is None else now - self.last_probe
        drifted = self.reference is not None and abs(median / self.reference - 1) > self.drift
        if since is None or (drifted and since >= self.min_interval) or since >= self.interval:
            self.probes += 1
            self.probe_med = {self.current: median}
            self.probing = [n for n in self.candidates if n != self.current]
            self._set(self.probing[0])

    def _decide(self, now: float) -> None:
        med = self.probe_med
        best = min(med, key=med.get)
        if best != self.current and med[best] < 0.95 * med[self.current]:
            self.current, self.switches, self.interval = best, self.switches + 1, self.min_interval
        else:
            self.interval = min(self.max_interval, self.interval * 2)
        self._set(self.current)
        self.reference = med[self.current]
        self.last_probe, self.last = now, self.clock()
        self.window = []


def model_params(model_cfg) -> int:
    """Parameters of G + D for a ModelConfig, counted on the meta device (no weights made):
    the ``model_size_hint`` of :func:`apply_process_policy`."""
    with torch.device("meta"):
        G, D = build_models(model_cfg)
    return count_parameters(G) + count_parameters(D)
