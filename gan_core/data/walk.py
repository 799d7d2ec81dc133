"""Walking a data folder: symlinks followed, loops and unreadable entries reported, never dropped.

Datasets are often assembled from links (``train -> /mnt/kaggle/vinbigdata/train``), so
symlinked folders are entered. A link back to a folder already on the current path (a loop) or a
second link to a folder already walked would list files forever or twice: such a folder is
walked once and the link is reported. Broken links and folders that cannot be listed are
reported too, so a summary can say why files are missing.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

SYMLINK_LOOP = "symlink loop"
DUPLICATE_LINK = "duplicate link"
BROKEN_LINK = "broken link"
UNREADABLE = "unreadable"


def walk_files(root: str | Path, problems: list[tuple[str, str]] | None = None,
               skip: Iterable[str | Path] = ()) -> list[Path]:
    """Files under ``root`` (recursive, symlinks followed), hidden names and ``skip`` left out.

    Paths keep the links they were reached through (so relative paths and image ids stay the
    user's names). Loops, duplicate links, broken links and unlistable folders are appended to
    ``problems`` as (path, reason).
    """
    root = Path(root)
    problems = problems if problems is not None else []
    skip_set = {Path(s).resolve() for s in skip}
    seen: dict[tuple[int, int], str] = {}
    out: list[Path] = []

    def visit(folder: Path, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            st = folder.stat()
        except OSError as e:
            problems.append((str(folder), f"{UNREADABLE}: {e.strerror or e}"))
            return
        ident = (st.st_dev, st.st_ino)
        if ident in ancestors:
            problems.append((str(folder), f"{SYMLINK_LOOP}: links back to {os.path.realpath(folder)}"))
            return
        if ident in seen:
            problems.append((str(folder), f"{DUPLICATE_LINK}: same folder as {seen[ident]}, walked once"))
            return
        seen[ident] = str(folder)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            problems.append((str(folder), f"{UNREADABLE}: cannot list the folder ({e.strerror or e})"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows symlinks
                is_file = entry.is_file()
            except OSError as e:
                kind = SYMLINK_LOOP if e.errno == errno.ELOOP else UNREADABLE
                problems.append((str(path), f"{kind}: {e.strerror or e}"))
                continue
            if is_dir:
                if path.resolve() not in skip_set:
                    visit(path, ancestors | {ident})
            elif is_file:
                out.append(path)
            elif entry.is_symlink():
                try:
                    os.stat(path)
                except OSError as e:
                    if e.errno == errno.ELOOP:  # a link to itself, or a cycle of file links
                        problems.append((str(path), f"{SYMLINK_LOOP}: {e.strerror}"))
                    else:
                        problems.append((str(path), f"{BROKEN_LINK}: points to missing {os.readlink(path)}"))

    visit(root, frozenset())
    return out
