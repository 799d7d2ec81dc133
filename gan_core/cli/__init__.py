# PYTHON_ARGCOMPLETE_OK
"""``xraygan``: one console command, one module per subcommand.

Each module of :data:`COMMAND_MODULES` defines ``add_parser(subparsers)``, which adds its parser and
sets ``func(args) -> int``. Commands stay thin: parse, call the library, print.
User errors (:class:`~xraygan.errors.XrayganError`) print as one line, without a traceback;
so do the OSErrors a user can fix (disk full, a path of the wrong kind, permission denied).
Exit codes (docs/limits.md): 0 done, 2 bad input (argparse's usage errors included), 3 a run
diverged or every trial of a sweep failed, 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM.

Shell completion: ``pip install argcomplete`` (a dependency) and
``eval "$(register-python-argcomplete xraygan)"`` in the shell's rc file.
"""

from __future__ import annotations

import argparse
import sys
import typing

from .. import __version__
from ..errors import XrayganError, from_os_error
from . import (
    anatomy,
    claims,
    data,
    fid,
    fid_check,
    memory,
    metrics,
    presets,
    report,
    sample,
    sweep,
    train,
)
from .argtypes import apply_formatter

COMMAND_MODULES = (train, presets, data, fid, metrics, sweep, memory, report, sample, fid_check,
                   claims, anatomy)
"""In the order ``xraygan --help`` lists them; each module's parsing imports no heavy library
(its ``run()`` does)."""
COMMANDS = tuple(m.__name__.rpartition(".")[2] for m in COMMAND_MODULES)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit 2): the message and where help is, instead
    of a usage block. Subcommand parsers inherit the class."""

    def error(self, message: str) -> typing.NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="xraygan",
        description="Benchmark and ablation suite for DCGAN-style chest X-ray GANs.",
    )
    parser.add_argument("--version", action="version", version=f"xraygan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMAND_MODULES:
        command.add_parser(sub)
    apply_formatter(parser)
    return parser


def _autocomplete(parser: argparse.ArgumentParser) -> None:
    """Tab completion when the shell asks for it (argcomplete sets _ARGCOMPLETE); a no-op
    otherwise, and without argcomplete installed."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def main(argv: list[str] | None = None) -> int:
    from ..safeio import restore_std_streams, tolerant_std_streams

    streams = tolerant_std_streams()  # closed fds, a closed pipe, unencodable names
    try:
        return _main(argv)
    finally:
        restore_std_streams(streams)


def _main(argv: list[str] | None) -> int:
    from ..process import set_wait_policy

    set_wait_policy()  # first, before a subcommand imports torch: libgomp reads it at load
    parser = build_parser()
    _autocomplete(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2), --help and --version (0): a return code
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        return int(args.func(args) or 0)
    except XrayganError as e:
        print(f"xraygan {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        user = from_os_error(e)  # disk full, a user path of the wrong kind: not a bug
        if user is None:
            raise
        print(f"xraygan {args.command}: error: {user}", file=sys.stderr)
        return user.exit_code
    except UnicodeError as e:  # a file name or text that is not valid UTF-8
        print(f"xraygan {args.command}: error: {_unicode_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or a run stopped by a signal after checkpointing
        from ..process import signal_exit_code

        name = getattr(e, "signal", "SIGINT")
        print(f"xraygan {args.command}: interrupted ({name})", file=sys.stderr)
        return signal_exit_code(name)


def _unicode_message(e: UnicodeError) -> str:
    obj = getattr(e, "object", b"")
    start = getattr(e, "start", 0)
    near = obj[max(0, start - 20): start + 20] if isinstance(obj, (str, bytes)) else ""
    if isinstance(near, bytes):
        near = near.decode("utf-8", "backslashreplace")
    elif isinstance(near, str):
        near = near.encode("utf-8", "backslashreplace").decode("utf-8")
    return (f"text that is not valid UTF-8 ({getattr(e, 'reason', e)}) near {near!r}: a file or "
            "folder name, or a file's contents, in another system's encoding; rename or "
            "convert it")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
