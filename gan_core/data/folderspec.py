"""The argument of ``folder:PATH[,labels=FILE.csv]``: the image folder and, for the downstream
utility test, where its labels are (standard library only: the command line checks the spec
with it before torch loads).

A plain image folder is labelled by a CSV of ``file,label`` rows (xraygan.data.labels): the
file :data:`LABELS_FILE` in the folder, or the file the ``labels=`` key names (a relative path
is read from the current directory, as the folder's own path is).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

LABELS_FILE = "labels.csv"
"""The labels a plain image folder carries when its spec names none: FOLDER/labels.csv."""
LABELS_KEY = ",labels="


def split_folder_arg(arg: str, where: str = "data.source") -> tuple[str, str | None]:
    """``PATH`` or ``PATH,labels=FILE`` -> (PATH, FILE or None). Only a trailing
    ``,labels=`` is a key, so a folder whose name holds a comma still works; the key given
    twice, or with no file, is a one-line ConfigError naming ``where``."""
    head, sep, tail = arg.rpartition(LABELS_KEY)
    if not sep:
        return arg, None
    if LABELS_KEY in head:
        raise ConfigError(f"{where}: 'folder:{arg}' gives labels= twice; give the labels file once")
    if not head:
        raise ConfigError(f"{where}: 'folder:{arg}' names no folder before ',labels='")
    if not tail.strip():
        raise ConfigError(f"{where}: 'folder:{arg}' names no file after 'labels=' "
                          "(e.g. folder:/data/cxr_png,labels=/data/cxr_labels.csv)")
    return head, tail.strip()


def folder_labels_path(arg: str, where: str = "data.source") -> tuple[Path, Path, bool]:
    """(folder, labels CSV, named): the CSV the spec's ``labels=`` names (``named`` True), or
    FOLDER/labels.csv (``named`` False); either may not exist (the caller says so)."""
    folder, given = split_folder_arg(arg, where)
    root = Path(folder).expanduser()
    if given is None:
        return root, root / LABELS_FILE, False
    return root, Path(given).expanduser(), True


def missing_labels_file(arg: str, where: str = "data.source") -> str:
    """Why the labels file a ``folder:`` spec names cannot be read ("" when it is a file or
    the spec names none): the one message of the early check and of the labels reader."""
    root, csv, named = folder_labels_path(arg, where)
    if not named or csv.is_file():
        return ""
    what = "is not a file" if csv.exists() else "does not exist"
    hint = ""
    if not csv.is_absolute() and (root / csv).is_file():
        hint = (f"; a relative labels= path is read from the current directory: did you mean "
                f"labels={root / csv}?")
    return (f"labels file {csv} {what} (expected a CSV with a header row file,label, named by "
            f"'labels=' in folder:{arg}){hint}")
