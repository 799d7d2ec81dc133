"""Every integer flag of every command is range-checked at parse time (one line, exit 2),
and every batch or count flag goes through the resource guard before anything is allocated.

The flag walk introspects the parser, so a new ``type=int`` flag anywhere fails here.
"""

from __future__ import annotations

import argparse

import pytest
from fuzz_helpers import run_main

from xraygan.cli import build_parser


def _all_actions(parser: argparse.ArgumentParser, prog: str = "xraygan"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_actions(sub, f"{prog} {name}")
        elif action.option_strings:
            yield prog, action


def test_no_command_takes_an_unbounded_integer():
    parser = build_parser()
    checked = 0
    for prog, action in _all_actions(parser):
        if action.type is int:
            pytest.fail(f"{prog} {action.option_strings[0]}: plain type=int (no range check)")
        if getattr(action.type, "__name__", "") != "int":
            continue
        checked += 1
        for hostile in ("9" * 25, "-" + "9" * 25, str(2**64), "1e3"):
            with pytest.raises(argparse.ArgumentTypeError):
                action.type(hostile)
    assert checked >= 30  # the walk saw the integer flags (train, sweep, data, fid, sample, ...)


@pytest.mark.parametrize("argv", [
    ["data", "phantom-dicom", "{tmp}/p", "--seed", str(2**64)],
    ["data", "prepare", "{tmp}", "--subset-seed", "-1"],
    ["data", "preview", "--data-seed", "99999999999999999999", "--png", "{tmp}/x.png"],
    ["fid", "phantom", "phantom", "--noise-seed", str(2**40)],
    ["sample", "{tmp}", "--out", "{tmp}/s", "--noise-seed", "-5"],
    ["sample", "{tmp}", "--out", "{tmp}/s", "--bits", "9" * 30],
    ["fid", "phantom", "phantom", "--batch-size", str(10**12)],
])
def test_out_of_range_integers_exit_2(tmp_path, argv):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_main(argv)
    assert code == 2 and "expected" in err, err


def test_batch_and_count_flags_go_through_the_guard(tmp_path, monkeypatch):
    from xraygan.config import ModelConfig
    from xraygan.errors import ResourceError
    from xraygan.guard import check_feature_extraction, check_generation

    monkeypatch.setenv("XRAYGAN_MEMORY_CAP", "2GiB")
    with pytest.raises(ResourceError, match="--batch-size"):
        check_feature_extraction(10**6, 10**6)
    check_feature_extraction(2048, 64)  # the defaults fit: about 1.3 GiB
    with pytest.raises(ResourceError, match="--n or --batch-size"):
        check_generation(ModelConfig(image_size=64), 10**8, 10**8, keep=False)
    check_generation(ModelConfig(image_size=64), 10**8, 256, keep=False)  # streamed: fits
    with pytest.raises(ResourceError):
        check_generation(ModelConfig(image_size=256), 10**6, 256, keep=True)  # 65 GB kept
    code, _, err = run_main(["fid", "phantom", "phantom", "--batch-size", str(10**8),
                             "--no-progress"])
    assert code == 2 and "XRAYGAN_MEMORY_CAP" in err and "--batch-size" in err, err
