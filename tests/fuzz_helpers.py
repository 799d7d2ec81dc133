"""Shared pieces of the fuzz suite (tests/test_fuzz_*.py): the contract every case checks,
value strategies for flags, and the hypothesis profiles.

Profiles (env ``XRAYGAN_FUZZ=...``): ``fast`` (default: a bounded subset for the default test
run) and ``long`` (``nox -s fuzz``: many more examples). The contract of one case:

- exit status 0, 2 or 3 (never 1, never an exception escaping ``main``);
- no "Traceback" on stderr;
- peak RSS of the process rises by less than ``RSS_CAP_BYTES``;
- no file of an existing run folder changed (hashed before and after).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import resource
import string
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE = os.environ.get("XRAYGAN_FUZZ", "fast")
settings.register_profile(
    "fast", max_examples=int(os.environ.get("XRAYGAN_FUZZ_EXAMPLES", "10")), deadline=None,
    derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=int(os.environ.get("XRAYGAN_FUZZ_EXAMPLES", "400")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ = settings.get_profile(PROFILE)

ALLOWED_EXIT = {0, 2, 3}
RSS_CAP_BYTES = 1_500 * 2**20  # the worst legitimate case here is a tiny model: far below


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def tree_hash(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_main(argv: list[str], guarded: list[Path] = ()) -> tuple[int, str, str]:
    """``xraygan.cli.main(argv)`` in-process, checking the contract; (code, out, err)."""
    from xraygan.cli import main

    before = {p: tree_hash(p) for p in guarded}
    rss0 = peak_rss_bytes()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # main returns codes; a SystemExit escaping is a finding too
            code = e.code if isinstance(e.code, int) else 1
            print(f"SystemExit escaped main: {e.code!r}", file=sys.stderr)
    o, e = out.getvalue(), err.getvalue()
    assert code in ALLOWED_EXIT, f"exit {code} for {argv!r}\n{e[-2000:]}"
    assert "Traceback" not in e, f"traceback for {argv!r}\n{e[-3000:]}"
    grew = peak_rss_bytes() - rss0
    assert grew < RSS_CAP_BYTES, f"peak RSS grew by {grew / 2**20:.0f} MiB for {argv!r}"
    for p, h in before.items():
        assert tree_hash(p) == h, f"{argv!r} changed files of the run {p}"
    return code, o, e


# ------------------------------------------------------------------ value strategies
HOSTILE_INTS = st.one_of(
    st.integers(min_value=-(2**70), max_value=-1),
    st.integers(min_value=10**8, max_value=2**70),
    st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64, 2**64 + 1, 10**30]),
)
SMALL_INTS = st.integers(min_value=0, max_value=40)


def ints(small=SMALL_INTS) -> st.SearchStrategy[str]:
    """Integer flag values: small plausible ones, hostile ones, and text that is no integer."""
    return st.one_of(
        small.map(str), HOSTILE_INTS.map(str),
        st.sampled_from(["", "1.5", "1e3", "nan", "0x10", " 3", "-0", "+4", "1_0", "٣"]),
    )


def floats() -> st.SearchStrategy[str]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(min_value=0, max_value=1).map(repr),
        st.sampled_from(["nan", "-nan", "inf", "-inf", "1e999", "-1e-999", "", "0", "1,5", "NaN"]),
    )


TEXT = st.text(alphabet=string.printable + "éß中\u202e", max_size=24)


def texts() -> st.SearchStrategy[str]:
    return st.one_of(TEXT, st.sampled_from(["", "-", "--", "phantom", "folder:", "dicom:/nope",
                                            "cache:", "auto", "cpu", "cuda:7", "x" * 300]))


def paths(tmp: Path, extra: list[Path] = ()) -> st.SearchStrategy[str]:
    """Paths of every kind: a file, a folder, missing, under a file, unwritable, odd names."""
    f = tmp / "a_file.txt"
    if not f.exists():
        f.write_text("not a config\n")
    d = tmp / "a_folder"
    d.mkdir(exist_ok=True)
    kinds = [str(f), str(d), str(tmp / "missing"), str(tmp / "missing" / "deeper" / "x.json"),
             str(f / "under_a_file"), "", ".", "/", "/proc/self/status", str(d) + "/",
             str(tmp / "new.json"), str(tmp / "new.toml"), str(tmp / "new_folder"),
             str(tmp / "weird name ü.yaml")] + [str(p) for p in extra]
    return st.sampled_from(kinds)
