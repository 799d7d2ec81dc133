"""Reading what a user hands over without letting its contents decide how much is allocated.

A file's size on disk says little about what reading it costs: ``/dev/zero`` and a FIFO never
end, a sparse file claims terabytes it does not store, a 1 kB YAML document expands to
gigabytes through aliases, a 300-byte ``.npz`` can declare a (10**6, 10**6) array. Every reader
at the boundary asks this module first; the answer comes from metadata (``fstat``, ``.npy``
headers) and costs nothing whatever the file claims.

The limits are named in :data:`LIMITS`, each with the environment variable that raises it; an
error names the file, the limit and that variable (docs/limits.md lists them all).
"""

from __future__ import annotations

import os
import stat
import sys
import zipfile
from dataclasses import dataclass

from .budget import format_bytes, memory_budget, parse_bytes
from .errors import ConfigError, ResourceError, UserFileError
from .lazy import lazy_module

np = lazy_module("numpy")


@dataclass(frozen=True)
class Limit:
    """One resource limit on file contents: its environment variable, default and meaning."""

    env: str
    default: int
    unit: str  # "bytes", "nodes", "levels", ...
    what: str  # one line for docs/limits.md

    def value(self) -> int:
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        if self.unit == "bytes":
            try:
                parsed = parse_bytes(raw)
            except Exception:
                parsed = -1
            if parsed is None or parsed < 1:
                raise ConfigError(f"{self.env}: expected a size such as 4MiB or 1000000, got {raw!r}")
            return parsed
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(f"{self.env}: expected a whole number >= 1 of {self.unit}, got {raw!r}")
        return value

    def exceeded(self, got: str) -> str:
        """The tail of an error message: what was found, the limit, how to raise it."""
        return (f"{got}, over the limit of {self.value():,} {self.unit} "
                f"(if the file is genuine, raise it with ${self.env})")


LIMITS: dict[str, Limit] = {
    "config_bytes": Limit("XRAYGAN_MAX_CONFIG_BYTES", 1 << 20, "bytes",
                          "size of a config file (--config, RUN/config.json); a config is a few kB"),
    "config_nodes": Limit("XRAYGAN_MAX_CONFIG_NODES", 10_000, "nodes",
                          "values in a config document after YAML aliases are expanded"),
    "config_depth": Limit("XRAYGAN_MAX_CONFIG_DEPTH", 32, "levels",
                          "nesting depth of a config document (a config has 2)"),
    "json_bytes": Limit("XRAYGAN_MAX_JSON_BYTES", 64 << 20, "bytes",
                        "size of a run folder's JSON file (summary.json, evaluations)"),
    "metrics_bytes": Limit("XRAYGAN_MAX_METRICS_BYTES", 2 << 30, "bytes",
                           "a run's metrics.csv (about 60 bytes a logged step)"),
    "labels_bytes": Limit("XRAYGAN_MAX_LABELS_BYTES", 256 << 20, "bytes",
                          "a labels CSV (VinBigData train.csv, a folder's labels file); "
                          "VinBigData's is 5 MB"),
    "cache_bytes": Limit("XRAYGAN_MAX_CACHE_BYTES", 16 << 20, "bytes",
                         "a cached result in a run folder (utility.json, about 2 kB); a larger "
                         "one is recomputed, not read"),
    "dicom_inflated": Limit("XRAYGAN_MAX_DICOM_INFLATED", 512 << 20, "bytes",
                            "a deflated DICOM data set after decompression"),
}


def limit(name: str) -> int:
    return LIMITS[name].value()


# --------------------------------------------------------------------------- bounded reads
def regular_file_size(path: str | os.PathLike, what: str) -> int:
    """The size of ``path``, refusing what is not a regular file (a FIFO, /dev/zero, a socket:
    reading them never ends or blocks) with UserFileError."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UserFileError(f"{what} {_open_reason(e)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserFileError(f"{what} is a folder, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise UserFileError(f"{what} is {_kind(st.st_mode)}; expected a regular file")
    return st.st_size


def read_bounded(path: str | os.PathLike, limit_name: str, what: str,
                 error: type[Exception] = ConfigError) -> bytes:
    """The bytes of regular file ``path``, refused before reading when larger than the limit.

    ``what`` names the file in errors ("--config: run.yaml"). The size is checked on the open
    file (fstat), and at most limit + 1 bytes are read, so a file that grows while it is read
    (or lies in its metadata) is still bounded; FIFOs and devices are refused unread.
    """
    lim = LIMITS[limit_name]
    cap = lim.value()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"{what} {_open_reason(e)}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{what} is a folder, expected a file")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} is {_kind(st.st_mode)}; expected a regular file")
        if st.st_size > cap:
            raise error(f"{what} is {lim.exceeded(f'{st.st_size:,} bytes')}")
        chunks, total = [], 0
        while total <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > cap:
            raise error(f"{what} is {lim.exceeded(f'more than {cap:,} bytes')}")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"{what} cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)


def _open_reason(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "does not exist"
    if isinstance(e, PermissionError):
        return "is not readable (permission denied)"
    if isinstance(e, NotADirectoryError):
        return "does not exist (a part of the path is a file)"
    return f"cannot be read ({e.strerror or e})"


def _kind(mode: int) -> str:
    return ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


# --------------------------------------------------------------------------- .npz headers
@dataclass(frozen=True)
class ArrayInfo:
    """What a ``.npy`` member of an ``.npz`` declares, read from its header alone."""

    shape: tuple[int, ...]
    dtype: object  # numpy dtype
    nbytes: int


def npz_headers(path: str | os.PathLike, what: str) -> dict[str, ArrayInfo]:
    """{name: ArrayInfo} of every array in ``path`` (an .npz), from the ``.npy`` headers only.

    Refuses (UserFileError naming the file) what ``np.load`` would refuse later or, worse,
    allocate first: not a zip, a member that is not .npy, an object dtype (pickles), a header
    that does not parse. Nothing is decompressed beyond the first bytes of each member.
    """
    regular_file_size(path, what)
    out: dict[str, ArrayInfo] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                with zf.open(info) as f:
                    try:
                        version = np.lib.format.read_magic(f)
                        if version == (1, 0):
                            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
                        else:
                            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    except ValueError as e:
                        raise UserFileError(f"{what}: member {info.filename!r} is not "
                                            f"a .npy array ({str(e).splitlines()[0]})") from None
                if dtype.hasobject:
                    raise UserFileError(f"{what}: array {name!r} holds Python objects "
                                        "(a pickle); only numeric arrays are read")
                n = 1
                for s in shape:
                    n *= int(s)
                out[name] = ArrayInfo(tuple(int(s) for s in shape), dtype, n * dtype.itemsize)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as e:
        raise UserFileError(f"{what} is not a readable .npz file "
                            f"({type(e).__name__}: {e})") from None
    return out


def check_npz(path: str | os.PathLike, what: str,
              expected: dict[str, tuple[int | None, ...]]) -> dict[str, ArrayInfo]:
    """The headers of ``path`` checked against ``expected`` ({name: shape, None = any length})
    for the names present, and the total size against the memory guard, before any load."""
    heads = npz_headers(path, what)
    for name, want in expected.items():
        got = heads.get(name)
        if got is None:
            continue
        if len(got.shape) != len(want) or any(w is not None and w != g
                                              for w, g in zip(want, got.shape, strict=True)):
            shown = "x".join("N" if w is None else str(w) for w in want) or "a scalar"
            raise UserFileError(f"{what}: array {name!r} has shape {got.shape}, "
                                f"expected {shown}")
        if got.dtype.kind not in "biuf":
            raise UserFileError(f"{what}: array {name!r} is of type {got.dtype}, "
                                "expected numbers")
    total = sum(a.nbytes for a in heads.values())
    budget = memory_budget()
    if budget is not None and total > budget.limit:
        biggest = max(heads, key=lambda k: heads[k].nbytes)
        raise ResourceError(f"{what}: its arrays declare {format_bytes(total)} ({biggest!r} has "
                            f"shape {heads[biggest].shape}), but {budget.describe()}; a 2048-d "
                            "FID statistics file holds about 32 MiB: is it the right file? (If "
                            "genuine, raise XRAYGAN_MEMORY_CAP.)")
    return heads


# --------------------------------------------------------------------------- standard streams
def reopen_closed_std_fds() -> list[int]:
    """Point closed descriptors 0, 1, 2 at /dev/null; returns the ones that were closed.

    A process started with stdout closed (``xraygan sweep >&-``, some daemons and schedulers)
    would hand descriptor 1 to the next file it opens: the study database or a checkpoint,
    which every later ``print`` (and every child process's output) then writes into.
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:  # lower descriptors were open: place it where it belongs
            os.dup2(null, fd)
            os.close(null)
    return closed


class TolerantStream:
    """A text stream that survives its reader: once a write or flush fails because the pipe
    was closed (``xraygan memory ... | head -n 2``) or the stream is gone, further output is
    dropped instead of raising, so the command still finishes its work (a sweep does not
    strand its trials) and exits with its own status. Text that cannot be encoded (a
    non-UTF-8 file name) is written with backslash escapes instead of raising."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.broken = False

    def _guard(self, op, *args):
        if self.broken:
            return None
        try:
            return op(*args)
        except UnicodeEncodeError:
            data = args[0].encode(getattr(self._stream, "encoding", None) or "utf-8",
                                  "backslashreplace").decode(
                getattr(self._stream, "encoding", None) or "utf-8", "replace")
            return self._guard(op, data)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self.broken = True  # ValueError: "I/O operation on closed file"
        except OSError as e:
            import errno

            if e.errno not in (errno.EPIPE, errno.EBADF, errno.EIO):
                raise
            self.broken = True
        return None

    def write(self, text: str) -> int:
        self._guard(self._stream.write, text)
        return len(text)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def tolerant_std_streams() -> tuple[object, object]:
    """Install TolerantStream around sys.stdout and sys.stderr (after reopening closed
    descriptors); returns the previous streams for the caller to restore."""
    reopen_closed_std_fds()
    old = (sys.stdout, sys.stderr)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    if not isinstance(sys.stdout, TolerantStream):
        sys.stdout = TolerantStream(sys.stdout)
    if not isinstance(sys.stderr, TolerantStream):
        sys.stderr = TolerantStream(sys.stderr)
    return old


def restore_std_streams(old: tuple[object, object]) -> None:
    """Undo :func:`tolerant_std_streams`, flushing what is left (quietly, if the reader is gone).

    When stdout's pipe is broken, descriptor 1 is pointed at /dev/null so the interpreter's
    own flush at exit does not print "Exception ignored ... BrokenPipeError"."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, TolerantStream):
            stream.flush()
    if isinstance(sys.stdout, TolerantStream) and sys.stdout.broken:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError):
            pass
    sys.stdout, sys.stderr = old  # type: ignore[assignment]
