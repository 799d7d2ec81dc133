"""argparse pieces shared by every subcommand: value types that reject bad input at parse
time (one line, exit 2, never a traceback), and the help formatter (defaults shown, plain text).

Numbers are checked against the config's field metadata (xraygan.config.Param), so a flag and
the config field it sets accept exactly the same values. Paths are checked for their kind:
``--out`` is a folder (existing or creatable), ``--config`` an existing config file, ``--json``
/ ``--png`` / ``--csv`` a file whose folder exists.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import losses, models, optim  # noqa: F401  (their registries name the config's parts)
from ..config import CONFIG_SUFFIXES, COUNT_MAX, DataConfig, Param, check_value, field_param
from ..errors import ConfigError

ArgType = Callable[[str], Any]


def _named(fn: ArgType, name: str) -> ArgType:
    fn.__name__ = name  # argparse names the type in some messages
    return fn


# --------------------------------------------------------------------------- numbers
def parse_int(text: str) -> int:
    """An integer literal (underscores and a sign allowed); no floats, no 1e3."""
    t = text.strip().replace("_", "")
    if not re.fullmatch(r"[+-]?\d{1,30}", t):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"expected an integer, got {shown!r}")
    return int(t)


def parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"expected a number, got {shown!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _checked(parse: ArgType, p: Param | None, name: str, path: str = "") -> ArgType:
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{path}: {e}" if path else str(e)) from None
        if p is not None:
            try:
                check_value(p, value, path or "value")
            except ConfigError as e:
                raise argparse.ArgumentTypeError(str(e).removeprefix("value: ")) from None
        return value

    return _named(convert, name)


def int_type(min: int | None = None, max: int | None = None) -> ArgType:
    """An integer in [min, max] (a flag with no config field behind it). Without ``max`` the
    config's sanity limit for counts applies, so no integer flag is unbounded."""
    return _checked(parse_int, Param(help="", min=min, max=COUNT_MAX if max is None else max),
                    "int")


def seed_type() -> ArgType:
    """A seed: the range of the config's seed fields (0 .. 2**32 - 1, what every RNG takes)."""
    return _checked(parse_int, field_param(DataConfig, "seed"), "int")


def float_type(min: float | None = None, max: float | None = None,
               gt: float | None = None) -> ArgType:  # fmt: skip
    return _checked(parse_float, Param(help="", min=min, max=max, gt=gt), "float")


SECTION_OF = {"ModelConfig": "model", "OptimConfig": "optim", "DataConfig": "data",
              "TrainConfig": "train"}


def field_type(cls: type, name: str) -> ArgType:
    """The parser of config field ``cls.name``: its type and its metadata's constraints; the
    error names the field too (``argument --image-size: model.image_size: expected ...``)."""
    import dataclasses
    import typing

    p = field_param(cls, name)
    if p.registry is not None:  # checked at parse time like any choice: one line, exit 2
        p = dataclasses.replace(p, choices=p.choice_names(), registry=None)
    path = f"{SECTION_OF.get(cls.__name__, cls.__name__)}.{name}"
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args and typing.get_origin(hint) is not tuple else hint
    if typing.get_origin(hint) is tuple:
        elem = _checked(parse_int, dataclasses.replace(p, max_len=None), "int", path)

        def ints(text: str) -> tuple[int, ...]:
            parts = [x for x in text.replace(",", " ").split()]
            if p.max_len is not None and len(parts) > p.max_len:
                raise argparse.ArgumentTypeError(f"{path}: expected at most {p.max_len} values, "
                                                 f"got {len(parts)}")
            return tuple(elem(x) for x in parts)

        return _named(ints, "ints")
    if base is int:
        return _checked(parse_int, p, "int", path)
    if base is float:
        return _checked(parse_float, p, "float", path)
    return _checked(str, p, "str", path)


def registry_type(registry: Any, field: str) -> ArgType:
    """A name of ``registry`` (presets, ...), rejected with the registry's own message."""

    def name(text: str) -> str:
        try:
            registry.get(text, field=field)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text

    return _named(name, "name")


def completer(names: Any) -> Callable[..., list[str]]:
    """An argcomplete completer (any callable taking keyword arguments) for fixed names."""
    return lambda **_: list(names)


# --------------------------------------------------------------------------- paths
def _exists_kind(path: Path) -> str:
    if path.is_dir():
        return "a folder"
    if path.exists():
        return "a file"
    return "missing"


def out_dir(text: str) -> Path:
    """``--out DIR``: an existing folder, or one that can be created (its nearest existing
    parent is a writable folder). Nothing is created here."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty path")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; --out names a folder "
                                         "(files are written with --json FILE / --png FILE)")
    parent = path
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, so the folder cannot "
                                         "be created")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: {parent} is not writable")
    return path


def existing_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        kind = _exists_kind(path)
        raise argparse.ArgumentTypeError(f"{text}: expected a folder, "
                                         f"{'it does not exist' if kind == 'missing' else 'it is ' + kind}")
    return path


def input_file(text: str) -> Path:
    """A file to read: it exists and is not a folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} is not readable")
    return path


def config_file(text: str) -> Path:
    """``--config FILE``: an existing .json / .toml / .yaml file (RUN/config.json)."""
    path = input_file(text)
    if path.suffix and path.suffix.lower() not in CONFIG_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: expected a {' / '.join(CONFIG_SUFFIXES)} "
                                         "config file")
    return path


def output_file(text: str) -> Path:
    """``--json FILE`` / ``--png FILE`` / ``--csv FILE``: a file path (not a folder) whose
    folder exists; an existing file is replaced atomically by the writer."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty path")
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {parent} does not exist"
                                         if not parent.exists() else f"{text}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: folder {parent} is not writable")
    return path


# --------------------------------------------------------------------------- help
_REST = [
    (re.compile(r":[a-z]+:`~?([^`<]+?)(?:\s*<[^>]+>)?`"), r"\1"),  # :class:`X`, :func:`~a.b`
    (re.compile(r"``([^`]+)``"), r"\1"),  # ``literal``
    (re.compile(r"`([^`]+)`_?"), r"\1"),  # `text`, `link`_
]


def plain(text: str) -> str:
    """reST markup stripped: help is read in a terminal, not rendered."""
    for pattern, repl in _REST:
        text = pattern.sub(repl, text)
    return text


# The placeholder an option's help shows for its value, by the kind of value its type parses;
# argparse's own (the destination in capitals: BATCH_SIZE, NOISE_SEED) would leak code names.
METAVARS = {"int": "N", "float": "X", "name": "NAME", "out_dir": "DIR", "existing_dir": "DIR",
            "input_file": "FILE", "output_file": "FILE", "config_file": "FILE"}

DEVICE_HELP = "auto | cpu | cuda | cuda:N (auto: cuda when available, else cpu)"


def add_device_argument(parser: Any, default: str | None = "auto", help: str = DEVICE_HELP) -> None:
    """``--device``, the same flag in every command; ``auto`` resolves when the command runs."""
    parser.add_argument("--device", default=default, metavar="DEVICE", help=help)


class HelpFormatter(argparse.HelpFormatter):
    """Every option's default shown in one style, ``(default: X)``; reST markup stripped;
    placeholders from the value's kind (N, X, FILE, DIR); an option's older spellings parse
    but are not listed; descriptions kept as written where a paragraph is indented (example
    command lines), wrapped where it is prose."""

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return METAVARS.get(getattr(action.type, "__name__", ""), "VALUE")

    def _format_action_invocation(self, action: argparse.Action) -> str:
        long = [s for s in action.option_strings if s.startswith("--")]
        if len(long) > 1:  # the first long spelling is the name; later ones are aliases
            shown = [s for s in action.option_strings if not s.startswith("--")] + long[:1]
            action = copy.copy(action)
            action.option_strings = shown
        return super()._format_action_invocation(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain(action.help or "")
        if (not action.option_strings or action.nargs == 0 or action.required
                or action.help is argparse.SUPPRESS or "default" in text.lower()
                or action.default is argparse.SUPPRESS):
            return text
        if action.default is None or action.default == "":  # not used unless given
            return text + " (default: none)"
        if isinstance(action.default, (list, tuple)):
            shown = " ".join(map(str, action.default)) or "none"
            return text + " (default: " + shown + ")"
        return text + " (default: %(default)s)"

    def _format_text(self, text: str) -> str:
        if "%(prog)" in text:
            text = text % dict(prog=self._prog)
        else:
            text = text.replace("%%", "%")  # descriptions are not %-formatted by argparse
        text = plain(text)
        width = max(self._width - self._current_indent, 11)
        indent = " " * self._current_indent
        out = []
        for para in re.split(r"\n\s*\n", text.strip("\n")):
            lines = para.splitlines()
            if lines and all(line.startswith((" ", "\t")) for line in lines if line.strip()):
                out.append("\n".join(indent + line.rstrip() for line in lines))
            else:
                out.append(self._fill_text(" ".join(para.split()), width, indent))
        return "\n\n".join(out) + "\n\n"


def apply_formatter(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and all its subparsers the HelpFormatter (set after construction, so
    command modules need not pass it)."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                apply_formatter(sub)
