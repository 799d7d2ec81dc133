"""User-facing errors.

Everything a user can cause (a bad config, an impossible geometry, a broken data folder, a run
that diverged) raises a subclass of :class:`XrayganError`. The CLI prints these as one clear
message and a non-zero exit code; anything else is a bug and keeps its traceback.
"""


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
