"""Checks a command makes before it imports torch or loads data, Inception or a study: a
mistake in a path, a data spec, the device or a study's identity answers in about a second
with one line naming the flag or field, instead of after minutes of phantoms or features.

Everything here is standard library only (plus sqlite3 for a study's stored settings): the
full checks (the loaders', torch's device probe, optuna's) still run later and stay the
authority; these only move the common mistakes to the front.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError

DATA_KINDS = ("cache", "dicom", "folder", "phantom")
"""The dataset kinds xraygan.data registers (a test keeps the two equal)."""
PATH_KINDS = {"folder": "a folder of images", "dicom": "a DICOM folder or file",
              "cache": "a prepared cache folder (xraygan data prepare)"}
DICOM_SUFFIXES = (".dcm", ".dicom")


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.startswith((".", "~")) or Path(text).expanduser().exists()


def _has_dicom(path: Path) -> bool:
    """Some DICOM file among the first entries of ``path`` (a cheap look, not a walk)."""
    if path.is_file():
        return path.suffix.lower() in DICOM_SUFFIXES
    try:
        with os.scandir(path) as it:
            for i, entry in enumerate(it):
                if entry.name.lower().endswith(DICOM_SUFFIXES):
                    return True
                if i > 200:
                    break
    except OSError:
        return False
    return False


def check_data_spec(spec: str | None, flag: str = "--data") -> None:
    """``spec`` is a known kind, and the path of a folder:/dicom:/cache: spec exists: raise a
    one-line ConfigError/DataError naming ``flag`` otherwise (a bare path: the spec it meant)."""
    if not spec or not spec.strip():  # empty: the config's own check names the field
        return
    kind, sep, arg = spec.partition(":")
    if kind not in DATA_KINDS:
        if _looks_like_path(spec):
            path = Path(spec).expanduser()
            guess = "dicom" if path.exists() and _has_dicom(path) else "folder"
            raise ConfigError(f"{flag} {spec}: a data spec names its kind first; did you mean "
                              f"{flag} {guess}:{spec}? (kinds: {', '.join(DATA_KINDS)})")
        raise ConfigError(f"{flag} {spec!r}: unknown dataset {kind!r}; choose one of: "
                          f"{', '.join(DATA_KINDS)} (e.g. phantom, folder:PATH)")
    if kind not in PATH_KINDS:
        return
    if not sep or not arg:
        raise ConfigError(f"{flag} {spec!r}: names no path after '{kind}:'")
    full = arg
    if kind == "folder":  # folder:PATH,labels=FILE.csv
        from ..data.folderspec import split_folder_arg

        arg = split_folder_arg(arg, flag)[0]
    path = Path(arg).expanduser()
    if not path.exists():
        raise DataError(f"{flag} {spec}: {path} does not exist (expected {PATH_KINDS[kind]})")
    if kind in ("folder", "cache") and not path.is_dir():
        raise DataError(f"{flag} {spec}: {path} is a file (expected {PATH_KINDS[kind]})")
    if kind == "folder":
        from ..data.folderspec import missing_labels_file

        why = missing_labels_file(full, flag)
        if why:
            raise DataError(f"{flag} {spec}: {why}")


def cuda_driver_present() -> bool:
    """An NVIDIA driver on this machine (what torch.cuda needs), seen without importing torch."""
    if Path("/proc/driver/nvidia/version").exists():
        return True
    try:
        return any(n.startswith("nvidia") and n[6:].isdigit() for n in os.listdir("/dev"))
    except OSError:
        return False


def check_device(device: str | None, flag: str = "--device") -> None:
    """A CUDA device asked for on a machine without an NVIDIA driver: one line now."""
    if device and str(device).startswith("cuda") and not cuda_driver_present():
        raise ConfigError(f"{flag} {device}: no CUDA device on this machine (no NVIDIA driver "
                          "found); use --device cpu, or auto to take a GPU where there is one")


def differences(have: Mapping[str, Any], want: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The leaf fields where two settings dicts differ, as ``scale.steps: 2000 in the study,
    500 now`` (nested dicts are compared field by field)."""
    out = []
    for k in dict.fromkeys([*want, *have]):
        a, b = have.get(k), want.get(k)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {json.dumps(a)} in the study, {json.dumps(b)} now")
    return out


def stored_study_attrs(url: str, name: str) -> dict[str, Any] | None:
    """The user attributes of study ``name`` in a SQLite storage, read with sqlite3 (no
    optuna, no schema upgrade, no file created); None when there is no such file or study, or
    the storage is not SQLite (the sweep's own check decides those)."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///"):])
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute(
                "SELECT a.key, a.value_json FROM study_user_attributes a JOIN studies s "
                "ON a.study_id = s.study_id WHERE s.study_name = ?", (name,)).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return {k: json.loads(v) for k, v in rows} if rows else None


def check_study_identity(url: str, name: str, want: Mapping[str, Any]) -> None:
    """An existing study of this name created with other settings: the differing fields now,
    before data, features or storage are opened."""
    have = stored_study_attrs(url, name)
    if not have or have.get("study") is None:
        return
    want = json.loads(json.dumps(dict(want)))  # as stored: tuples are lists
    diff = differences({k: have.get(k) for k in want}, want)
    if diff:
        raise ConfigError(f"study {name!r} in {url} was created with other settings: "
                          f"{'; '.join(diff[:4])}{'; ...' if len(diff) > 4 else ''}; use the "
                          "same flags, or another --study-name / --out")


def check_sample_source(spec: str | None) -> None:
    """An argument of ``xraygan fid``: a data spec (checked as one), or a path that exists
    (an image folder, a run folder, a statistics .npz)."""
    if not spec:
        return
    kind = spec.partition(":")[0]
    if kind in DATA_KINDS:
        check_data_spec(spec, "data spec")
        return
    if not Path(spec).expanduser().exists():
        raise DataError(f"{spec}: not found; expected an image folder, a run folder, or a "
                        "dataset spec (phantom, folder:PATH, dicom:PATH, cache:PATH) or a "
                        "statistics .npz")


def check_paths_exist(paths: list[str] | tuple[str, ...], what: str) -> None:
    """Each of ``paths`` exists: the first missing one, named, now."""
    for p in paths:
        if not Path(p).expanduser().exists():
            raise DataError(f"{p}: does not exist (expected {what})")
