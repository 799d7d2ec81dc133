"""Every subcommand's help: defaults shown, plain text, one vocabulary, help that matches code."""

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from xraygan.cli import build_parser, main
from xraygan.cli.argtypes import HelpFormatter, plain
from xraygan.cli.train import config_flags
from xraygan.config import DataConfig, ModelConfig, OptimConfig, TrainConfig, param_of


def walk(parser: argparse.ArgumentParser, name: str = "xraygan"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from walk(p, f"{name} {sub}")


PARSERS = dict(walk(build_parser()))


def options(parser):
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


def test_every_subcommand_is_walked():
    for name in ("train", "presets", "data prepare", "data preview", "fid", "metrics", "sweep",
                 "memory", "report"):
        assert f"xraygan {name}" in PARSERS


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_shows_its_default(name):
    parser = PARSERS[name]
    fmt = parser._get_formatter()
    missing = []
    for a in options(parser):
        if a.nargs == 0 or a.required or isinstance(a, argparse._HelpAction):
            continue
        if "default" not in fmt._get_help_string(a).lower():
            missing.append(a.option_strings[0])
    assert not missing, f"{name}: no default in the help of {missing}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_is_plain_text(name):
    text = PARSERS[name].format_help()
    assert "%%" not in text and "``" not in text and ":class:" not in text, text
    assert "%(default)" not in text


def test_memory_help_prints_a_percent_sign_not_two():
    text = PARSERS["xraygan memory"].format_help()
    assert "saving in %" in " ".join(text.split())


def test_data_help_keeps_examples_and_drops_markup():
    text = PARSERS["xraygan data"].format_help()
    assert "xraygan data: prepare a DICOM folder" in " ".join(text.split())
    assert "\n    xraygan data prepare /data/vinbigdata" in text  # example lines stay lines


def test_plain_strips_rest_markup():
    assert plain("``xraygan fid`` uses :class:`~xraygan.X` and `pytorch-fid`_") == \
        "xraygan fid uses xraygan.X and pytorch-fid"


def test_every_config_field_has_a_train_flag():
    flags = {(c.section, c.name): c.flag for c in config_flags()}
    for section, cls in (("model", ModelConfig), ("optim", OptimConfig), ("data", DataConfig),
                         ("train", TrainConfig)):
        for f in dataclasses.fields(cls):
            assert param_of(f) is not None, f"{section}.{f.name} has no param() metadata"
            assert (section, f.name) in flags, f"{section}.{f.name} has no flag"
    train_help = PARSERS["xraygan train"].format_help()
    for flag in ("--weight-decay", "--lr2", "--lr3", "--beta3", "--eps", "--init-std",
                 "--features", "--lr", "--g-fc", "--d-fc", "--data", "--data-seed",
                 "--optimizer", "--preset", "--config"):
        assert re.search(rf"\n  {re.escape(flag)}[ ,\n]", train_help), flag


def test_train_help_defaults_come_from_the_fields():
    text = " ".join(PARSERS["xraygan train"].format_help().split())
    assert "--lr2 X AdaS: initial learning rate of the learning rates (default: 0.005)" in text
    assert "--batch-size N images per step (default: 64)" in text
    assert "--eps X Adam / AdaS epsilon (default: 1e-08)" in text


def test_sweep_help_reads_the_scales():
    """The --quick help states the scale's own steps and FID samples."""
    from xraygan.ablations.scale import FULL, QUICK

    text = " ".join(PARSERS["xraygan sweep"].format_help().split())
    assert f"{QUICK.steps:,} steps" in text and f"FID on {QUICK.fid_samples:,} samples" in text
    assert f"{FULL.epochs:g} epochs" in text and f"FID on {FULL.fid_samples:,} samples" in text
    assert "300 steps" not in text and "500 samples" not in text


# ------------------------------------------------------------------ one vocabulary
def _flags(parser):
    return {s for a in options(parser) for s in a.option_strings}


def test_out_is_always_a_folder():
    """--out DIR everywhere; files are --json / --png / --csv FILE."""
    from xraygan.cli.argtypes import out_dir

    for name, parser in PARSERS.items():
        for a in options(parser):
            if a.option_strings[0] == "--out":
                assert a.type is out_dir, f"{name}: --out is not a folder"
            if any(s in ("--json", "--png", "--csv") for s in a.option_strings):
                assert a.metavar == "FILE", f"{name}: {a.option_strings} metavar {a.metavar}"


def test_fid_sample_counts_are_fid_samples_everywhere():
    for name in ("xraygan fid", "xraygan metrics", "xraygan sweep"):
        assert "--fid-samples" in _flags(PARSERS[name]), name


def test_seed_means_the_training_seed():
    """--seed only where a model is trained; other seeds have their own names."""
    for name, parser in PARSERS.items():
        for a in options(parser):
            if a.option_strings[0] == "--seed":
                assert name == "xraygan train", f"{name}: --seed is not the training seed"


def test_image_size_is_one_name():
    for name, parser in PARSERS.items():
        primary = {a.option_strings[0] for a in options(parser)}
        assert "--image-sizes" not in primary and "--sizes" not in primary, name
    mem = build_parser().parse_args(["memory", "--image-size", "16", "32"])
    assert mem.image_sizes == [16, 32]
    old = build_parser().parse_args(["memory", "--image-sizes", "16"])  # still accepted
    assert old.image_sizes == [16]


def test_no_progress_on_long_running_subcommands():
    for name in ("xraygan train", "xraygan fid", "xraygan metrics", "xraygan sweep",
                 "xraygan data prepare"):
        assert "--no-progress" in _flags(PARSERS[name]), name


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_flag_has_help_text(name):
    bare = [a.option_strings[0] for a in options(PARSERS[name])
            if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not bare, f"{name}: flags without help text: {bare}"


def test_help_exits_zero(capsys):
    assert main(["train", "--help"]) == 0
    assert "--weight-decay" in capsys.readouterr().out


def test_argcomplete_marker_and_completers():
    init = Path(__import__("xraygan.cli", fromlist=["x"]).__file__).read_text()
    assert "# PYTHON_ARGCOMPLETE_OK" in init[:1024]  # where register-python-argcomplete looks
    train = PARSERS["xraygan train"]
    by_flag = {a.option_strings[0]: a for a in options(train)}
    assert "paper-elu" in by_flag["--preset"].completer()
    assert "adas" in by_flag["--optimizer"].completer()
    assert isinstance(HelpFormatter("x"), argparse.HelpFormatter)


def test_argcomplete_completes_flags(monkeypatch, capfd):
    """Drive argcomplete the way the shell hook does and read its answer."""
    argcomplete = pytest.importorskip("argcomplete")
    import os

    line = "xraygan train --optim"
    env = {"_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_SHELL": "bash"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r, w = os.pipe()
    out = os.fdopen(w, "w")
    with pytest.raises(SystemExit):
        argcomplete.autocomplete(build_parser(), output_stream=out, exit_method=lambda c: (_ for _ in ()).throw(SystemExit(c)))
    out.close()
    answer = os.fdopen(r).read()
    assert "--optimizer" in answer


ALLOWED_METAVARS = {"N", "X", "F", "W", "S", "C", "LR", "FILE", "DIR", "NAME", "URL", "SPEC",
                    "DEVICE", "CELL", "CLASS", "RUN", "TEXT", "STUDY", "STUDY:KEY", "KEY", "KIND"}
# F a fraction, W a width, S seconds, C a held-out source
CHOICES_OR_LIST = re.compile(r"\{[\w,-]+\}|[A-Z],[A-Z],\.\.\.")


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_placeholder_comes_from_the_vocabulary(name):
    # argparse's own placeholder is the destination in capitals (BATCH_SIZE, NOISE_SEED)
    fmt = PARSERS[name]._get_formatter()
    odd = {}
    for a in options(PARSERS[name]):
        if a.nargs == 0 or a.choices is not None:
            continue
        shown = fmt._metavar_formatter(a, fmt._get_default_metavar_for_optional(a))(1)[0]
        if shown not in ALLOWED_METAVARS and not CHOICES_OR_LIST.fullmatch(shown):
            odd[a.option_strings[0]] = shown
    assert not odd, f"{name}: placeholders outside the vocabulary: {odd}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_one_default_style_and_no_empty_default(name):
    text = " ".join(PARSERS[name].format_help().split())
    assert re.findall(r"\(default [^:]", text) == [], "use (default: X)"
    assert "(default: )" not in text


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_older_spellings_parse_but_are_not_listed(name):
    text = PARSERS[name].format_help()
    for old in ("--sizes", "--image-sizes", "--samples", "--size,", "--out FILE"):
        assert old not in text, f"{name} lists {old}"


def test_an_older_spelling_still_parses():
    args = build_parser().parse_args(["data", "preview", "phantom", "--out", "g.png",
                                      "--size", "32"])
    assert (str(args.out), args.size) == ("g.png", 32)


def test_every_device_flag_defaults_to_auto():
    for name, parser in PARSERS.items():
        for a in options(parser):
            if a.dest != "device":
                continue
            if name in ("xraygan train", "xraygan sweep"):  # config flags: unset means the config's
                assert "(default: auto)" in a.help or "the scale's, auto" in a.help, name
            else:
                assert a.default == "auto", name
    assert "default: the scale's, auto" in " ".join(PARSERS["xraygan sweep"].format_help().split())


def test_one_flag_one_placeholder_across_commands():
    seen: dict[str, dict[str, str]] = {}
    for name, parser in PARSERS.items():
        fmt = parser._get_formatter()
        for a in options(parser):
            if a.nargs == 0 or a.choices is not None:
                continue
            shown = fmt._metavar_formatter(a, fmt._get_default_metavar_for_optional(a))(1)[0]
            if shown.startswith("{"):  # a list of choices, shown as such
                continue
            seen.setdefault(a.option_strings[0], {})[name] = shown
    odd = {flag: by for flag, by in seen.items() if len(set(by.values())) > 1}
    assert not odd, f"one flag, several placeholders: {odd}"


def test_cli_page_states_the_placeholder_vocabulary():
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for metavar in ("`N`", "`X`", "`F`", "`S`", "`LR`", "`FILE`", "`DIR`", "`KEY`"):
        assert metavar in text, metavar
