"""User-facing errors.

Everything a user can cause (a bad config, an impossible geometry, a broken data folder, a run
that diverged, a path that is not what a flag needs, a full disk) raises a subclass of
:class:`XrayganError`. The CLI prints these as one clear message and their ``exit_code``
(2 for bad input, 3 for a run that diverged); anything else is a bug and keeps its traceback.

The family, by what the user has to fix:

    XrayganError            base; exit 2
      ConfigError           a config field / flag value (also a ValueError)
        GeometryError       a layer stack that cannot produce the image size
      DataError             a dataset that cannot be read
      RunFolderError        a run folder missing files or of another format
      UserFileError         a file or folder named by the user: missing, wrong kind, unreadable
        CheckpointError     a checkpoint that cannot be loaded
      StorageError          an Optuna storage URL that cannot be opened
      DiskFullError         ENOSPC / EDQUOT while writing
      ResourceError         more memory than available or XRAYGAN_MEMORY_CAP (guard)
      TrainingDiverged      NaN / inf; exit 3
"""

from __future__ import annotations

import errno


class XrayganError(Exception):
    """Base class of errors caused by user input; the CLI prints them without a traceback."""

    exit_code = 2


class ConfigError(XrayganError, ValueError):
    """A configuration field has a value that cannot work; the message names the field."""


class GeometryError(ConfigError):
    """A layer stack cannot produce the requested image size; the message names the layer."""


class DataError(XrayganError):
    """A dataset cannot be read or holds no usable image; the message names the file."""


class TrainingDiverged(XrayganError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3


class RunFolderError(XrayganError):
    """A run folder is missing files or holds files of another format."""


class UserFileError(XrayganError):
    """A file or folder the user named is missing, of the wrong kind, or unreadable."""


class CheckpointError(UserFileError):
    """A checkpoint file cannot be loaded (truncated, foreign, missing keys)."""


class StorageError(XrayganError):
    """A study storage (SQLite file, PostgreSQL URL) cannot be opened or is not a study."""


class DiskFullError(XrayganError):
    """The disk (or quota) filled up while writing; the message names the file."""


class ResourceError(XrayganError):
    """A run would allocate more memory than is available (or than XRAYGAN_MEMORY_CAP allows);
    the message says how much, what is available and which flag lowers it (xraygan.guard)."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
USER_ERRNOS = {
    errno.EROFS: "read-only file system; choose a writable folder (--out) or remount it",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EFBIG: "file too large for this file system",
    errno.EMFILE: "too many open files (raise ulimit -n)",
    errno.ENFILE: "too many open files on this machine",
    errno.EIO: "input/output error (a failing disk or a network file system)",
    errno.ENXIO: "no such device",
    errno.ETXTBSY: "file busy",
}
"""errno values a user (or the user's machine) causes and can fix, with what to say."""
PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
               FileExistsError)


def from_os_error(e: OSError) -> XrayganError | None:
    """The user-facing error for an OSError a user can fix (disk full, a path of the wrong
    kind or permission), or None for anything else (a bug: keep the traceback)."""
    name = e.filename if e.filename is not None else "?"
    if e.errno in DISK_FULL_ERRNOS:
        what = "disk quota exceeded" if e.errno == errno.EDQUOT else "disk full"
        return DiskFullError(f"{what} while writing {name}; free some space and run again")
    if isinstance(e, PATH_ERRORS) and e.filename is not None:
        reason = {
            FileNotFoundError: "does not exist",
            PermissionError: "permission denied",
            IsADirectoryError: "is a folder, expected a file",
            NotADirectoryError: "is not a folder (a path component is a file)",
            FileExistsError: "already exists",
        }[type(e)]
        return UserFileError(f"{name}: {reason}")
    if e.errno in USER_ERRNOS and e.filename is not None:  # about a file: the user's to fix
        return UserFileError(f"{name}: {USER_ERRNOS[e.errno]}")
    return None
