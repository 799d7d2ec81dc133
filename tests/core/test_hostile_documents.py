"""Config documents that would expand, block or mislead: bounded before they are walked.

Classes: alias bombs and recursive aliases (YAML), nesting depth (every parser), byte size
before the read (sparse files, /dev/zero, FIFOs), duplicate keys (JSON, YAML; TOML's own),
non-string keys (YAML). The bomb runs in a subprocess under RLIMIT_AS, so a regression is a
MemoryError there, not a machine brought down here. A hypothesis property builds documents
of all three formats with aliases, duplicates and odd keys and checks the contract of the
strict reader: a config or ConfigError, nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from fuzz_helpers import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from xraygan.config import ExperimentConfig, read_config_file
from xraygan.documents import parse_document
from xraygan.errors import ConfigError


def alias_bomb(levels: int = 12, width: int = 9) -> str:
    """9**12 (2.8e11) leaves from a 450-byte document."""
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"model: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_in_bounded_memory(tmp_path):
    f = tmp_path / "bomb.yaml"
    f.write_text(alias_bomb())
    assert f.stat().st_size < 600
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (400 * 2**20, 400 * 2**20))
        from xraygan.config import read_config_file
        from xraygan.errors import ConfigError
        try:
            read_config_file({str(f)!r})
        except ConfigError as e:
            print("REFUSED", e)
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
        print("PEAK_KB", hwm.split()[1])  # this process's own peak (ru_maxrss spans the exec)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "REFUSED" in out.stdout and "XRAYGAN_MAX_CONFIG_NODES" in out.stdout
    assert "bomb.yaml" in out.stdout
    peak_kb = int(out.stdout.split("PEAK_KB")[1])
    assert peak_kb < 200 * 1024  # the interpreter and PyYAML: tens of MB, not gigabytes
    assert len(out.stdout) < 1000  # the message does not render the expanded value


def test_aliases_within_the_limit_still_work(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("train: &t {steps: 3, batch_size: 8}\nname: run\n")
    assert read_config_file(f).train.steps == 3


def test_merge_keys_may_override(monkeypatch):
    data = parse_document("b: &b {steps: 1, batch_size: 4}\nt:\n  <<: *b\n  steps: 2\n", ".yaml", "x")
    assert data["t"] == {"steps": 2, "batch_size": 4}


def test_node_limit_is_raised_by_its_variable(monkeypatch):
    doc = alias_bomb(levels=4, width=9)  # 9**4 = 6561 leaves (+ lists) in the last alias
    monkeypatch.setenv("XRAYGAN_MAX_CONFIG_NODES", "1000")
    with pytest.raises(ConfigError, match="XRAYGAN_MAX_CONFIG_NODES"):
        parse_document(doc, ".yaml", "f.yaml")
    monkeypatch.setenv("XRAYGAN_MAX_CONFIG_NODES", "100000")
    assert len(parse_document(doc, ".yaml", "f.yaml")["model"]) == 9


@pytest.mark.parametrize("doc, suffix, match", [
    ("a: &a [*a]\n", ".yaml", "recursive alias"),
    ("[" * 5000 + "]" * 5000, ".json", "XRAYGAN_MAX_CONFIG_DEPTH"),
    ("[" * 50000 + "]" * 50000, ".yaml", "XRAYGAN_MAX_CONFIG_DEPTH"),
    ("a = " + "[" * 5000 + "]" * 5000, ".toml", "XRAYGAN_MAX_CONFIG_DEPTH"),
    ('{"a":' * 40 + "1" + "}" * 40, ".json", "nested 3[3-9] levels deep"),
    ('{"name": "a", "name": "b"}', ".json", "duplicate key 'name'"),
    ('{"train": {"steps": 1, "steps": 2}}', ".json", "duplicate key 'steps'"),
    ("name: a\nname: b\n", ".yaml", "line 2: duplicate key 'name'"),
    ('name = "a"\nname = "b"\n', ".toml", "not valid TOML"),
    ("1: a\n", ".yaml", "key 1 is of type int"),
    ("train:\n  null: 3\n", ".yaml", "train: key None"),
    ("? [a]\n: b\n", ".yaml", "a list used as a key"),
    ("train: {[1]: 2}\n", ".yaml", "used as a key"),
    ("!!python/object:os.system {}\n", ".yaml", "not valid YAML"),
])
def test_hostile_documents_are_one_config_error(doc, suffix, match):
    with pytest.raises(ConfigError, match=match) as e:
        parse_document(doc, suffix, f"--config: f{suffix}")
    assert f"f{suffix}" in str(e.value) and len(str(e.value)) < 400


def test_size_is_checked_before_the_read(tmp_path, monkeypatch):
    sparse = tmp_path / "huge.json"
    with open(sparse, "wb") as f:
        f.truncate(5 * 2**30)  # 5 GiB claimed, nothing stored
    with pytest.raises(ConfigError, match=r"huge.json is 5,368,709,120 bytes.*XRAYGAN_MAX_CONFIG_BYTES"):
        read_config_file(sparse)
    with pytest.raises(ConfigError, match="/dev/zero is a device"):
        read_config_file("/dev/zero")
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="named pipe"):
        read_config_file(fifo)  # never blocks: nobody writes to it
    small = tmp_path / "c.json"
    small.write_text(json.dumps({"name": "x" * 3000}))
    monkeypatch.setenv("XRAYGAN_MAX_CONFIG_BYTES", "1KiB")
    with pytest.raises(ConfigError, match="over the limit of 1,024 bytes"):
        read_config_file(small)
    monkeypatch.setenv("XRAYGAN_MAX_CONFIG_BYTES", "lots")
    with pytest.raises(ConfigError, match="XRAYGAN_MAX_CONFIG_BYTES: expected a size"):
        read_config_file(small)


def test_cli_exit_codes_on_hostile_configs(tmp_path):
    from fuzz_helpers import run_main

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    dup = tmp_path / "dup.json"
    dup.write_text('{"train": {"steps": 1, "steps": 100000}}')
    for f in (bomb, dup, "/dev/zero"):
        code, _, err = run_main(["train", "--config", str(f), "--dry-run"])
        assert code == 2 and str(f) in err, err


# ------------------------------------------------------------------ property: any document
KEYS = st.sampled_from(["name", "model", "train", "steps", "batch_size", "image_size", "x", "<<"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70), st.floats(allow_nan=False),
                    st.text(max_size=5))


@st.composite
def yaml_documents(draw) -> str:
    """YAML text with anchors, aliases (some nested), duplicates and non-string keys."""
    lines, anchors = [], []
    for i in range(draw(st.integers(1, 8))):
        key = draw(st.one_of(KEYS, st.sampled_from(["1", "null", "[a]", "{b: 1}", "true"])))
        kind = draw(st.sampled_from(["scalar", "anchor", "alias", "map"]))
        if kind == "alias" and anchors:
            width = draw(st.integers(1, 12))
            value = "[" + ", ".join(f"*{draw(st.sampled_from(anchors))}" for _ in range(width)) + "]"
            if draw(st.booleans()):
                anchors.append(f"a{i}")
                value = f"&a{i} {value}"
        elif kind == "anchor":
            anchors.append(f"a{i}")
            value = f"&a{i} [{draw(st.integers(0, 9))}, {draw(st.integers(0, 9))}]"
        elif kind == "map":
            value = f"{{steps: {draw(st.integers(-2, 9))}, batch_size: {draw(st.integers(-2, 9))}}}"
        else:
            value = json.dumps(draw(SCALARS))
        lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def _json_like(draw, depth: int) -> str:
    if depth <= 0 or draw(st.booleans()):
        return json.dumps(draw(SCALARS))
    pairs = [f"{json.dumps(draw(KEYS))}: {_json_like(draw, depth - 1)}"
             for _ in range(draw(st.integers(0, 4)))]
    return "{" + ", ".join(pairs) + "}"


@st.composite
def json_documents(draw) -> str:
    return _json_like(draw, draw(st.integers(1, 40)))


@st.composite
def toml_documents(draw) -> str:
    out = []
    for _ in range(draw(st.integers(0, 5))):
        section = draw(st.sampled_from(["", "[train]", "[model]", "[train.x]", "[[train]]"]))
        out.append(section)
        for _ in range(draw(st.integers(0, 3))):
            out.append(f"{draw(KEYS).strip('<')  or 'k'} = {draw(st.integers(-3, 70))}")
    return "\n".join(out) + "\n"


def _contract(text: str, suffix: str) -> None:
    try:
        cfg = ExperimentConfig.from_dict(parse_document(text, suffix, f"f{suffix}"))
    except ConfigError as e:
        assert f"f{suffix}" in str(e) or "." in str(e) or ":" in str(e)
        assert len(str(e)) < 2000
        return
    assert ExperimentConfig.from_json(cfg.to_json()) == cfg


@FUZZ
@given(text=st.one_of(yaml_documents().map(lambda t: (t, ".yaml")),
                      json_documents().map(lambda t: (t, ".json")),
                      toml_documents().map(lambda t: (t, ".toml"))))
def test_property_documents_give_a_config_or_a_config_error(text):
    _contract(*text)


def test_docs_list_every_limit_and_exit_code():
    from pathlib import Path

    from xraygan.budget import MEMORY_CAP_ENV
    from xraygan.data.limits import MAX_PIXELS_ENV
    from xraygan.safeio import LIMITS

    page = (Path(__file__).resolve().parents[2] / "docs" / "limits.md").read_text()
    for env in [*(lim.env for lim in LIMITS.values()), MEMORY_CAP_ENV, MAX_PIXELS_ENV]:
        assert f"`{env}`" in page, env
    for code in (0, 2, 3, 129, 130, 143):
        assert f"| {code} |" in page
