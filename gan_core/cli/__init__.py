"""``xraygan``: one console command, one module per subcommand.

Each module in :data:`COMMANDS` defines ``add_parser(subparsers)``, which adds its parser and
sets ``func(args) -> int``. Commands stay thin: parse, call the library, print.
User errors (:class:`~gan_core.errors.XrayganError`) print as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import XrayganError

COMMANDS = ("train", "presets", "data", "fid", "metrics", "sweep", "memory", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xraygan",
        description="Benchmark and ablation suite for DCGAN-style chest X-ray GANs.",
    )
    parser.add_argument("--version", action="version", version=f"xraygan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except XrayganError as e:
        print(f"xraygan {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"xraygan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
