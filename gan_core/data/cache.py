"""The prepared-image cache: decode once, train many times; resumable; bad files listed.

Layout of a cache folder (see :func:`build_cache`)::

    index.json                 what is in the cache: source, settings, fingerprint, the images
                               (relative path, id, original shape) and the skipped files with
                               their reasons; written last, so it is the commit point
    images_64.npy              uint8 (N, 64, 64), one per prepared size, same order as index
    images_128.npy
    journal-<settings>.bin     append-only per-file results (pixels at every size, or the reason
                               a file is bad) for one set of pixel settings

The journal makes preparation resumable: each file's result is appended as soon as it arrives,
so a run killed half-way loses at most the files in flight, and the rerun decodes only the rest.
It is keyed by file identity (relative path, size, mtime), so when files are added, changed or a
different subset is asked for, only the new or changed files are decoded again. Records carry a
CRC; a torn last record (killed mid-write) is cut off when the journal is opened.

The cache is reused as is when the fingerprint (settings, selection, and every candidate file's
path, size and mtime) matches the index; the ``cache:PATH`` loader reads it without the source.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import multiprocessing
import os
import signal
import struct
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..progress import Progress
from ..runs import atomic_write_json
from ..safeio import read_bounded
from .base import DATASETS, ImageSet

CACHE_FORMAT = "xraygan-cache"
CACHE_VERSION = 1
INDEX = "index.json"


class CandidateFile(Protocol):
    """What the cache needs to know about an input file (``dicom.SourceFile`` is one)."""

    path: str
    rel: str

    def key(self) -> str: ...


Decode = Callable[[str], tuple[dict[int, np.ndarray], dict[str, Any]]]
"""decode(path) -> ({size: uint8 (size, size)}, info); raises for a bad file (``.reason``)."""


def array_name(size: int) -> str:
    return f"images_{int(size)}.npy"


# --------------------------------------------------------------------------- journal

_MAGIC = b"XGJ1"
_HEAD = struct.Struct("<4sIII")  # magic, header length, payload length, crc32(header + payload)


class Journal:
    """Append-only per-file results for one set of pixel settings (``sizes`` fixes the payload)."""

    def __init__(self, path: str | Path, sizes: Sequence[int]) -> None:
        self.path = Path(path)
        self.sizes = tuple(int(s) for s in sizes)
        self._records: dict[str, tuple[dict[str, Any], int]] = {}  # key -> (header, payload offset)
        self._scan()
        self._file = open(self.path, "ab")

    def _scan(self) -> None:
        if not self.path.exists():
            return
        good_end = 0
        with open(self.path, "rb") as f:
            while True:
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size:
                    break
                magic, hlen, plen, crc = _HEAD.unpack(head)
                if magic != _MAGIC:
                    break
                header_bytes = f.read(hlen)
                payload = f.read(plen)
                if len(header_bytes) < hlen or len(payload) < plen:
                    break
                if zlib.crc32(payload, zlib.crc32(header_bytes)) != crc:
                    break
                header = json.loads(header_bytes)
                self._records[header["key"]] = (header, good_end + _HEAD.size + hlen)
                good_end = f.tell()
        if good_end != self.path.stat().st_size:
            # A record torn by a kill mid-write (or junk): drop it, that file is decoded again.
            os.truncate(self.path, good_end)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def header(self, key: str) -> dict[str, Any]:
        return self._records[key][0]

    def append(self, key: str, ok: bool, reason: str, info: dict[str, Any],
               images: dict[int, np.ndarray] | None) -> None:
        payload = b""
        if ok:
            assert images is not None
            parts = []
            for s in self.sizes:
                a = np.ascontiguousarray(images[s], dtype=np.uint8)
                if a.shape != (s, s):
                    raise ValueError(f"decoder returned shape {a.shape} for size {s}")
                parts.append(a.tobytes())
            payload = b"".join(parts)
        header_bytes = json.dumps({"key": key, "ok": ok, "reason": reason, "info": info}).encode()
        crc = zlib.crc32(payload, zlib.crc32(header_bytes))
        offset = self._file.tell() + _HEAD.size + len(header_bytes)
        self._file.write(_HEAD.pack(_MAGIC, len(header_bytes), len(payload), crc) + header_bytes + payload)
        # flush, not fsync: a killed process keeps what reached the OS; a power cut may lose the
        # tail, which the CRC check then drops. fsync per file would cost more than small decodes.
        self._file.flush()
        self._records[key] = (json.loads(header_bytes), offset)

    def images(self, key: str, size: int) -> np.ndarray:
        _, offset = self._records[key]
        i = self.sizes.index(size)
        with open(self.path, "rb") as f:
            f.seek(offset + sum(s * s for s in self.sizes[:i]))
            return np.frombuffer(f.read(size * size), dtype=np.uint8).reshape(size, size)

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------- decoding


def _run_one(decode: Decode, path: str) -> tuple[bool, str, dict[str, Any], dict[int, np.ndarray] | None]:
    """Decode one file in a worker; a bad file is a result, never an exception."""
    try:
        images, info = decode(path)
        return True, "", info, images
    except Exception as e:
        reason = str(e) if getattr(e, "reason", None) else f"undecodable: {type(e).__name__}: {e}"
        return False, reason, {}, None


def _die_with_parent(lifeline) -> None:
    """Worker initializer: exit as soon as the preparing process is gone, however it died, and
    leave SIGINT to the preparing process.

    A worker's OS parent is the forkserver, not the process that prepares, and each worker holds
    the write end of the pool's call queue, so a SIGKILLed parent used to leave the forkserver and
    every worker alive (1.2 GB for 2 workers on VinBigData). ``lifeline`` is the read end of a
    pipe whose only write end the preparing process holds: when that process dies, for any
    reason, the kernel closes it and the read returns EOF here. PR_SET_PDEATHSIG covers the
    spawn start method, where the worker's parent is the preparing process itself.
    """
    import signal

    # Ctrl-C reaches the whole process group: the preparing process alone decides (it cancels
    # the pool and exits 130); a worker dying of it would break the pool and read as a crash
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if multiprocessing.get_start_method(allow_none=True) != "forkserver":
        _set_pdeathsig()

    def watch() -> None:
        try:
            while True:
                lifeline.recv_bytes()  # nothing is ever sent; returns only to raise EOFError
        except (EOFError, OSError):
            pass
        os._exit(1)  # no cleanup: the parent is gone and nobody waits for this process

    threading.Thread(target=watch, name="xraygan-lifeline", daemon=True).start()


def _set_pdeathsig() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: the lifeline alone
        pass


def _start_forkserver_without_sigint() -> None:
    """Start the forkserver with SIGINT ignored, which it and every worker forked from it
    inherit: Ctrl-C reaches the whole process group, and a server still importing its preload
    (torch, seconds) or a worker still starting would die of it with a KeyboardInterrupt
    traceback. The preparing process ignores SIGINT only while it starts the server."""
    import multiprocessing.forkserver
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        multiprocessing.forkserver.ensure_running()
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, old)


@contextmanager
def _pool(workers: int, decode: Decode) -> Iterator[ProcessPoolExecutor]:
    # forkserver, not fork: the parent may hold torch and tqdm threads, which fork does not copy
    # safely. The server imports the decoder's module (and with it torch, ~1.5 s) once per
    # parent process; each worker is then a cheap fork of it instead of a fresh interpreter.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([getattr(decode, "func", decode).__module__])
        _start_forkserver_without_sigint()
    else:
        ctx = multiprocessing.get_context("spawn")
    lifeline, keep_alive = ctx.Pipe(duplex=False)
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent,
                                 initargs=(lifeline,)) as ex:
            yield ex
    finally:
        keep_alive.close()
        lifeline.close()


def _decode_files(files: Sequence[CandidateFile], decode: Decode, record: Callable[..., None],
                  workers: int) -> None:
    if workers <= 1 or len(files) <= 1:
        for f in files:
            record(f, _run_one(decode, f.path))
        return
    done: set[str] = set()
    try:
        with _pool(workers, decode) as ex:
            futures = {ex.submit(_run_one, decode, f.path): f for f in files}
            try:
                for fut in as_completed(futures):
                    f = futures[fut]
                    record(f, fut.result())
                    done.add(f.rel)
            except BaseException:
                ex.shutdown(wait=True, cancel_futures=True)
                raise
    except BrokenProcessPool:
        # A decoder crashed its process (a native library on a corrupt stream). Find the culprit
        # by decoding the rest one file per process: slow, but only on this rare path. A crash
        # is reported but not journaled, so a rerun (say with another decoder) tries it again.
        crashes = successes = 0
        for f in files:
            if f.rel in done:
                continue
            try:
                with _pool(1, decode) as ex:
                    res = ex.submit(_run_one, decode, f.path).result()
                successes += 1
            except BrokenProcessPool:
                crashes += 1
                if crashes >= 3 and successes == 0:
                    raise RuntimeError(
                        "preparation workers die before decoding anything; run with --workers 1 "
                        "to see why (a script using the library needs an "
                        "`if __name__ == '__main__':` guard for worker processes)"
                    ) from None
                record(f, (False, "undecodable: the decoder crashed its process", {}, None), persist=False)
                continue
            record(f, res)


# --------------------------------------------------------------------------- build


@dataclass
class BuildResult:
    """What :func:`build_cache` did: the cache folder, its index, and how much it decoded."""

    cache_dir: Path
    index: dict[str, Any]
    reused: bool  # the existing cache matched: nothing was decoded or written
    decoded: int  # files decoded by this call
    from_journal: int  # files whose result came from an earlier (possibly interrupted) run

    @property
    def count(self) -> int:
        return int(self.index["count"])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [(s["path"], s["reason"]) for s in self.index["skipped"]]


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def fingerprint(settings: dict[str, Any], selection: dict[str, Any], files: Sequence[CandidateFile]) -> str:
    """Digest of everything that determines the cache content."""
    return _hash({"version": CACHE_VERSION, "settings": settings, "selection": selection,
                  "files": [f.key() for f in files]})


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _order(files: Sequence[CandidateFile], limit: int, seed: int) -> list[CandidateFile]:
    """The order files are taken in: all sorted, or a seeded random order when limited (a
    folder sorted by patient or date would otherwise give a biased first N)."""
    if not limit:
        return list(files)
    perm = np.random.default_rng(seed).permutation(len(files))
    return [files[i] for i in perm]


def reason_counts(skipped: Sequence[tuple[str, str]]) -> dict[str, int]:
    """{reason class: count}; the class is the reason up to the first colon."""
    return dict(Counter(r.split(":", 1)[0] for _, r in skipped).most_common())


def build_cache(
    cache_dir: str | Path,
    *,
    source: str,
    files: Sequence[CandidateFile],
    decode: Decode,
    settings: dict[str, Any],
    selection: dict[str, Any],
    sizes: Sequence[int],
    limit: int = 0,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    on_result: Callable[[str, bool], None] | None = None,
    not_journaled: Sequence[str] = (),
    unlisted: Sequence[tuple[str, str]] = (),
    label_problems: Sequence[str] = (),
) -> BuildResult:
    """Decode ``files`` (what is not in the journal yet) and write the cache; or reuse it.

    ``limit`` > 0 keeps at most that many *usable* images: files are taken in a seeded random
    order, and when some of the first ``limit`` are bad, more are taken until ``limit`` good
    ones are found or the files run out. ``on_result(rel, ok)`` is called in this process after
    each file's result is journaled (tests use it to simulate a kill). Bad results whose reason
    starts with one of ``not_journaled`` (resource caps) are reported but not journaled, so a
    rerun with a higher cap decodes them. ``unlisted``: (path, reason) of entries that never
    became candidates (symlink loops, broken links), listed with the skipped files;
    ``label_problems``: unusable train.csv rows, kept in the index for the summary.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sizes = tuple(sorted(int(s) for s in sizes))
    fp = fingerprint(settings, selection, files)
    try:
        old = read_index(cache_dir)
    except DataError:
        old = None
    if old is not None and old["fingerprint"] == fp and all(
        (cache_dir / name).is_file() for name in old["arrays"].values()
    ):
        return BuildResult(cache_dir, old, reused=True, decoded=0, from_journal=0)

    t0 = time.perf_counter()
    journal = Journal(cache_dir / f"journal-{_hash(settings)[:12]}.bin", sizes)
    decoded = 0
    transient: dict[str, dict[str, Any]] = {}  # results not journaled (decoder crashes)

    def result(f: CandidateFile) -> dict[str, Any]:
        return transient[f.key()] if f.key() in transient else journal.header(f.key())

    try:
        bar = None

        def record(f: CandidateFile, res, persist: bool = True) -> None:
            nonlocal decoded
            ok, reason, info, images = res
            if not ok and reason.startswith(tuple(not_journaled)):
                persist = False
            if persist:
                journal.append(f.key(), ok, reason, info, images)
            else:
                transient[f.key()] = {"key": f.key(), "ok": False, "reason": reason, "info": info}
            decoded += 1
            if bar is not None:
                bar.update(1)
            if on_result is not None:
                on_result(f.rel, ok)

        remaining = _order(files, limit, seed)
        taken: list[CandidateFile] = []
        good = 0
        while remaining:
            want = len(remaining) if not limit else limit - good
            if want <= 0:
                break
            batch, remaining = remaining[:want], remaining[want:]
            todo = [f for f in batch if f.key() not in journal and f.key() not in transient]
            if todo:
                bar = Progress(len(todo), desc=f"decoding {Path(source).name}", unit="file",
                               enabled=progress)
                try:
                    _decode_files(todo, decode, record, workers)
                finally:
                    bar.close()
            taken += batch
            good = sum(result(f)["ok"] for f in taken)

        taken.sort(key=lambda f: f.rel)
        ok_files = [f for f in taken if result(f)["ok"]]
        skipped = [{"path": f.rel, "reason": result(f)["reason"]} for f in taken if not result(f)["ok"]]
        skipped += [{"path": p, "reason": r} for p, r in unlisted]
        if not ok_files:
            counts = reason_counts([(s["path"], s["reason"]) for s in skipped])
            first = f"{skipped[0]['path']}: {skipped[0]['reason']}" if skipped else ""
            raise DataError(
                f"{source}: no usable image among {len(taken)} file(s) "
                f"({', '.join(f'{n} {r}' for r, n in counts.items())}); e.g. {first}"
            )
        # The old index goes first: a kill between writing arrays and index leaves no index
        # (rebuilt next time, from the journal) rather than an index describing other arrays.
        (cache_dir / INDEX).unlink(missing_ok=True)
        arrays = {}
        for s in sizes:
            stack = np.stack([journal.images(f.key(), s) for f in ok_files])  # (N, s, s) uint8
            _atomic_save_npy(cache_dir / array_name(s), stack)
            arrays[str(s)] = array_name(s)
        index = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "source": source,
            "fingerprint": fp,
            "settings": settings,
            "selection": selection,
            "sizes": list(sizes),
            "arrays": arrays,
            "count": len(ok_files),
            "images": [{"path": f.rel, "id": Path(f.rel).stem, **journal.header(f.key())["info"]}
                       for f in ok_files],
            "skipped": skipped,
            "skipped_counts": reason_counts([(s["path"], s["reason"]) for s in skipped]),
            "label_problems": list(label_problems),
            "stats": {"decoded": decoded, "from_journal": len(taken) - decoded,
                      "seconds": round(time.perf_counter() - t0, 3)},
        }
        atomic_write_json(cache_dir / INDEX, index)
    finally:
        journal.close()
    return BuildResult(cache_dir, index, reused=False, decoded=decoded, from_journal=len(taken) - decoded)


# --------------------------------------------------------------------------- load


def read_index(cache_dir: str | Path) -> dict[str, Any]:
    """The cache's index.json, checked; DataError naming the folder when it is no cache."""
    path = Path(cache_dir) / INDEX
    if not path.exists():
        raise DataError(f"{cache_dir}: no prepared cache here (no {INDEX}); run xraygan data prepare")
    try:
        index = json.loads(read_bounded(path, "json_bytes", str(path), error=DataError))
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"{path}: unreadable cache index ({e})") from None
    if not isinstance(index, dict):
        raise DataError(f"{path}: not a cache index (a JSON {type(index).__name__}, expected an object)")
    if index.get("format") != CACHE_FORMAT or index.get("version") != CACHE_VERSION:
        raise DataError(
            f"{path}: not a version-{CACHE_VERSION} xraygan cache "
            f"(format {index.get('format')!r}, version {index.get('version')!r}); prepare it again"
        )
    wrong = [k for k, t in INDEX_FIELDS.items() if not isinstance(index.get(k), t)
             or (t is int and isinstance(index.get(k), bool))]
    if wrong:
        raise DataError(f"{path}: damaged cache index (field(s) {', '.join(wrong)} missing or of "
                        "the wrong type); prepare it again")
    return index


INDEX_FIELDS = {"arrays": dict, "sizes": list, "count": int, "fingerprint": str, "skipped": list,
                "source": str}
"""Fields of index.json that loading a cache reads, with their types."""


def load_cache(cache_dir: str | Path, image_size: int, channels: int = 1, *,
               num_images: int = 0, seed: int = 0) -> ImageSet:
    """Images of a prepared cache at ``image_size``; at most ``num_images`` (seeded subset)."""
    cache_dir = Path(cache_dir)
    index = read_index(cache_dir)
    name = index["arrays"].get(str(image_size))
    if name is None:
        raise DataError(
            f"{cache_dir}: holds sizes {', '.join(map(str, index['sizes']))}, not {image_size}; "
            f"run: xraygan data prepare {index['source']} --sizes {image_size} --cache {cache_dir}"
        )
    if channels not in (1, 3):
        raise ConfigError(f"channels: expected 1 or 3 for radiographs, got {channels}")
    try:
        arr = np.load(cache_dir / name, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise DataError(f"{cache_dir / name}: unreadable cache array ({e})") from None
    if arr.dtype != np.uint8 or arr.shape != (index["count"], image_size, image_size):
        raise DataError(
            f"{cache_dir / name}: expected uint8 {(index['count'], image_size, image_size)}, "
            f"got {arr.dtype} {arr.shape}; prepare the cache again"
        )
    chosen = np.arange(len(arr))
    if num_images and len(arr) > num_images:
        chosen = np.sort(np.random.default_rng(seed).choice(len(arr), num_images, replace=False))
    images = torch.from_numpy(np.ascontiguousarray(arr[chosen]))[:, None]  # (N, 1, S, S)
    if channels == 3:
        images = images.expand(-1, 3, -1, -1).contiguous()
    digest = _hash({"cache": index["fingerprint"], "size": image_size, "channels": channels,
                    "chosen": chosen.tolist() if len(chosen) < len(arr) else "all"})
    source = index["source"]
    return ImageSet(
        images=images,
        fingerprint=digest,
        description=f"{source} via cache {cache_dir}: {len(images)} images at {image_size} px",
        skipped=[(os.path.join(source, s["path"]), s["reason"]) for s in index["skipped"]],
        ids=tuple(str(index["images"][i]["id"]) for i in chosen),
    )


@DATASETS.register("cache")
def load_cache_spec(arg: str | None, cfg: DataConfig, image_size: int, channels: int) -> ImageSet:
    """``cache:PATH``: a cache made by ``xraygan data prepare`` (the source need not be there)."""
    if not arg:
        raise ConfigError("data.source: 'cache' needs a folder, e.g. cache:~/.cache/xraygan/train-1a2b")
    return load_cache(Path(arg).expanduser(), image_size, channels, num_images=cfg.num_images, seed=cfg.seed)
