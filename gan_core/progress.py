"""Progress a person and a log can both read: a tqdm bar on a terminal, plain lines elsewhere.

    bar = Progress(total=600, desc="0003-paper-elu", initial=0)
    bar.update(1, loss_d=0.69, loss_g=0.71, img_s=1130)
    bar.close()

On a TTY with a width this is a tqdm bar. Without one (a file, a pipe, CI, nohup, or a pty
that reports 0 columns, where tqdm draws nothing) it writes one plain line every ``interval``
seconds, never a carriage return:

    [progress] 0003-paper-elu: step 120/600 (20%) 35.2 step/s ETA 0:00:14 loss_d=0.690 ...

plus one line when it starts and one when it closes, so even a short run shows in a log.
A unit that takes longer than ``interval`` (a batch of Inception features on a loaded CPU)
still gets its line: a background heartbeat writes one whenever ``interval`` seconds passed
without one. ``enabled=False`` (the CLI's ``--no-progress``) silences all of them.

Environment overrides (for logs whose owner cannot pass flags, e.g. a nox session):
  XRAYGAN_PROGRESS           auto (default) | bar | lines | off
  XRAYGAN_PROGRESS_INTERVAL  seconds between plain lines (default 30)
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

DEFAULT_INTERVAL_S = 30.0
MODES = ("auto", "bar", "lines", "off")


def default_interval() -> float:
    raw = os.environ.get("XRAYGAN_PROGRESS_INTERVAL", "")
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


def is_terminal(stream: TextIO) -> bool:
    """A TTY that reports a usable width (a 0-column pty gets plain lines: tqdm draws nothing there)."""
    try:
        if not stream.isatty():
            return False
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or inf: unknown
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def format_postfix(postfix: dict[str, Any]) -> str:
    parts = []
    for k, v in postfix.items():
        if isinstance(v, float):
            v = f"{v:.0f}" if abs(v) >= 100 else f"{v:.3f}"
        parts.append(f"{k}={v}")
    return " ".join(parts)


class Progress:
    """A progress report over ``total`` units (training steps, trials, files).

    ``update(n, **postfix)`` advances by ``n`` and replaces the shown key=value pairs (losses,
    images/s); ``set_postfix(**postfix)`` replaces them without advancing. Use as a context
    manager or call ``close()``; closing twice is harmless.
    """

    def __init__(self, total: int | None, desc: str = "", enabled: bool = True, initial: int = 0,
                 *, unit: str = "step", interval: float | None = None,
                 stream: TextIO | None = None, mode: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.initial = int(initial)
        self.interval = default_interval() if interval is None else float(interval)
        self.stream = stream if stream is not None else sys.stderr
        self.postfix: dict[str, Any] = {}
        self._clock = clock
        self._t0 = self._last = clock()
        self._closed = False
        self._bar = None
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        mode = (mode or os.environ.get("XRAYGAN_PROGRESS", "auto")).lower()
        if mode not in MODES:
            mode = "auto"
        if not enabled or mode == "off":
            self.mode = "off"
        elif mode == "bar" or (mode == "auto" and is_terminal(self.stream)):
            self.mode = "bar"
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                             dynamic_ncols=True, file=self.stream)
        else:
            self.mode = "lines"
            self._line("start")
            self._start_heartbeat()

    # ------------------------------------------------------------------ public API
    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.n += n
        if postfix:
            self.postfix = dict(postfix)
        if self.mode == "bar":
            if postfix:
                self._bar.set_postfix_str(format_postfix(postfix), refresh=False)
            self._bar.update(n)
        elif self.mode == "lines":
            self._maybe_line()

    def set_postfix(self, **postfix: Any) -> None:
        self.update(0, **postfix)

    def write(self, message: str) -> None:
        """A message on its own line that does not break the bar."""
        if self.mode == "bar":
            self._bar.write(message, file=self.stream)
        elif self.mode == "lines":
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stop is not None:
            self._stop.set()
        if self.mode == "bar":
            self._bar.close()
        elif self.mode == "lines":
            self._line("done" if self.total is not None and self.n >= self.total else "stopped")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plain lines
    def rate(self) -> float:
        """Units per second since this report started (resumed units not counted)."""
        dt = self._clock() - self._t0
        return (self.n - self.initial) / dt if dt > 0 else 0.0

    def eta_s(self) -> float:
        rate = self.rate()
        if self.total is None or rate <= 0:
            return float("nan")
        return max(self.total - self.n, 0) / rate

    def line(self, event: str | None = None) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        head = f"[progress] {self.desc}: " if self.desc else "[progress] "
        text = f"{head}{self.unit} {self.n}{total}{pct}"
        if event == "start":
            return text + " start"
        rate = self.rate()
        text += f" {rate:.0f} {self.unit}/s" if rate >= 100 else f" {rate:.2f} {self.unit}/s"
        if event is None:
            eta = self.eta_s()
            text += (f" ETA {format_duration(eta)}" if eta == eta else
                     f" ETA ? (running {format_duration(self._clock() - self._t0)}, no {self.unit} "
                     "done yet)" if self.total is not None else "")
        else:
            text += f" {event} after {format_duration(self._clock() - self._t0)}"
        if self.postfix:
            text += " " + format_postfix(self.postfix)
        return text

    def _maybe_line(self) -> None:
        with self._lock:
            now = self._clock()
            if self._closed or now - self._last < self.interval:
                return
            self._last = now
            self._line()

    def _start_heartbeat(self) -> None:
        """A daemon thread that writes a line when ``interval`` seconds passed without one
        (real time only: a test's fake clock or an interval under a second gets none)."""
        if self._clock is not time.monotonic or self.interval < 1:
            return
        self._stop = threading.Event()

        def beat() -> None:
            while not self._stop.wait(self.interval / 2):
                self._maybe_line()

        threading.Thread(target=beat, name=f"progress {self.desc}", daemon=True).start()

    def _line(self, event: str | None = None) -> None:
        try:
            print(self.line(event), file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed or broken log must not stop training
            pass
