"""Bad inputs and faults on the data side: train.csv of every shape, symlinked and
looping folders, resource caps that are not journaled, a skipped-file summary on the console,
and preparation workers that die with their parent. Each case asserts the message names the
file and the reason, or the right result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xraygan.cli import main
from xraygan.data import dicom_writer as writer
from xraygan.data.cache import read_index
from xraygan.data.dicom import (
    NO_FINDING,
    PrepSettings,
    find_dicom_files,
    prepare,
    read_train_csv,
)
from xraygan.errors import DataError

HEADER = "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n"


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XRAYGAN_CACHE_DIR", str(tmp_path / "cache-home"))
    monkeypatch.setenv("XRAYGAN_WORKERS", "1")
    return tmp_path / "cache-home"


@pytest.fixture(scope="module")
def small_vinbig(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vb")
    writer.write_phantom_dicoms(root, 4, 64, seed=2, codec="raw")
    return root


# --------------------------------------------------------------------------- train.csv


def _csv(tmp_path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "train.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_rows_of_every_shape_parse_or_are_reported_by_line(tmp_path):
    path = _csv(tmp_path, HEADER
                + "a,Nodule/Mass,8,R1,1,2,3,4\n"       # 2: fine
                + "b\n"                                # 3: a bare image_id row
                + "c,No finding,14,R2\n"               # 4: missing columns
                + "d,Nodule, Mass,8,R1,1,2,3,4\n"      # 5: an extra column (unquoted comma)
                + "\n"                                 # blank lines are no rows
                + "e,,,R3,,,,\n"                       # 7: empty class_name, no class_id
                + "f,,8,R3,,,,\n"                      # 8: empty class_name, class_id known
                + ",No finding,14,R1,,,,\n"            # 9: empty image_id
                + "g,No finding,14,R1,,,,\n")          # 10: fine
    table = read_train_csv(path)
    assert table.labels == {"a": {"Nodule/Mass"}, "f": {"Nodule/Mass"}, "g": {NO_FINDING}}
    lines = {int(p.split(":")[1]): p for p in table.problems}
    assert sorted(lines) == [3, 4, 5, 7, 9]
    assert all(p.startswith(f"{path}:") for p in table.problems)
    assert "1 field(s), the header has 8" in lines[3] and "4 field(s)" in lines[4]
    assert "9 field(s)" in lines[5]
    assert "empty class_name for image e" in lines[7] and "not 'No finding'" in lines[7]
    assert "empty image_id" in lines[9]


def test_empty_class_name_is_not_no_finding(tmp_path):
    """An image whose only row has an empty class_name is not selected as a normal."""
    path = _csv(tmp_path, HEADER + "a,,,R1,,,,\na,,,R2,,,,\nb,No finding,14,R1,,,,\n")
    table = read_train_csv(path)
    assert table.labels == {"b": {NO_FINDING}} and "a" not in table.labels
    assert len(table.problems) == 2


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-8-sig", "utf-8"])
def test_csv_encodings_and_bom(tmp_path, encoding):
    path = _csv(tmp_path, HEADER + "a,Épanchement pleural,10,R1,,,,\nb,No finding,14,R1,,,,\n", encoding)
    table = read_train_csv(path)
    assert table.labels == {"a": {"Épanchement pleural"}, "b": {NO_FINDING}}
    assert table.problems == []
    assert table.class_ids["Épanchement pleural"] == "10"


def test_csv_without_the_columns_or_rows_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv: expected VinBigData columns.*missing class_name"):
        read_train_csv(_csv(tmp_path, "image_id;class_name\na;No finding\n"))  # semicolons
    with pytest.raises(DataError, match=r"train\.csv: .*missing class_name, image_id.*<empty file>"):
        read_train_csv(_csv(tmp_path, ""))
    with pytest.raises(DataError, match=r"train\.csv: no usable label row .*train\.csv:2: 1 field"):
        read_train_csv(_csv(tmp_path, HEADER + "a\n"))


def test_label_problems_reach_the_console(small_vinbig, tmp_path, capsys):
    import shutil

    src = tmp_path / "vb"
    shutil.copytree(small_vinbig, src)
    with open(src / "train.csv", "a") as f:
        f.write("deadbeef\n")
    assert main(["data", "prepare", str(src), "--labels", "No finding", "--sizes", "32",
                 "--workers", "1", "--cache", str(tmp_path / "c"), "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "train.csv: 1 row(s) left out:" in out.out
    assert f"{src / 'train.csv'}:" in out.out and "1 field(s)" in out.out
    assert "[progress]" not in out.err  # --no-progress honoured while decoding


# --------------------------------------------------------------------------- folders


def test_symlinked_train_folder_is_followed_and_loops_reported(small_vinbig, tmp_path):
    root = tmp_path / "linked"
    root.mkdir()
    (root / "train").symlink_to(small_vinbig / "train", target_is_directory=True)
    (root / "again").symlink_to(small_vinbig / "train", target_is_directory=True)
    (root / "sub").mkdir()
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "self.dcm").symlink_to(root / "self.dcm")
    (root / "gone.dcm").symlink_to(tmp_path / "missing.dcm")
    problems: list[tuple[str, str]] = []
    files = find_dicom_files(root, problems=problems)
    assert len(files) == 4 and all(f.rel.startswith("again/") for f in files)  # sorted: again < train
    reasons = {Path(p).relative_to(root).as_posix(): r for p, r in problems}
    assert reasons["train"].startswith("duplicate link")
    assert reasons["sub/loop"].startswith("symlink loop")
    assert reasons["self.dcm"].startswith("symlink loop")
    assert reasons["gone.dcm"].startswith("broken link")
    r = prepare(root, PrepSettings(sizes=(32,)), cache_dir=tmp_path / "c", workers=1, progress=False)
    assert r.count == 4
    assert dict(r.skipped)["sub/loop"].startswith("symlink loop")


def test_too_large_files_are_reported_but_not_journaled(small_vinbig, tmp_path, capsys):
    """A cap is this run's setting, not the file's fault: raising it decodes the file."""
    cache = tmp_path / "c"
    with pytest.raises(DataError, match=r"no usable image among 4 file\(s\) \(4 too large\).*train/"):
        prepare(small_vinbig, PrepSettings(sizes=(32,), max_pixels=100), cache_dir=cache,
                workers=1, progress=False)
    r = prepare(small_vinbig, PrepSettings(sizes=(32,)), cache_dir=cache, workers=1, progress=False)
    assert r.count == 4 and r.decoded == 4 and r.skipped == []
    code = main(["data", "prepare", str(small_vinbig), "--sizes", "32", "--workers", "1",
                 "--cache", str(tmp_path / "d"), "--max-pixels", "100", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "too large: header says" in err and "Traceback" not in err
    try:
        code = main(["data", "prepare", str(small_vinbig), "--max-pixels", "-3"])
    except SystemExit as e:  # argparse's own exit, where main does not catch it
        code = e.code
    assert code == 2 and "--max-pixels: expected a number of pixels >= 1" in capsys.readouterr().err


def test_skipped_summary_counts_reasons_and_names_the_first_files(small_vinbig, tmp_path, capsys):
    import shutil

    src = tmp_path / "vb"
    shutil.copytree(small_vinbig, src)
    for i in range(12):
        (src / "train" / f"junk{i:02d}.dcm").write_bytes(b"x" * i)
    assert main(["data", "prepare", str(src), "--sizes", "32", "--workers", "1",
                 "--cache", str(tmp_path / "c"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "skipped 12 of 16 files (12 not DICOM):" in out
    assert "train/junk00.dcm: not DICOM: empty file" in out
    assert "... and 2 more (all listed in index.json)" in out
    assert len(read_index(tmp_path / "c")["skipped"]) == 12


# --------------------------------------------------------------------------- worker processes


def _children(pid: int, depth: int = 99) -> set[int]:
    """Every descendant of ``pid`` (from /proc: psutil is not a dependency)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [(pid, 0)]
    while todo:
        parent, level = todo.pop()
        for child in parents.get(parent, []) if level < depth else ():
            out.add(child)
            todo.append((child, level + 1))
    return out


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL of a preparing process used to leave the forkserver and its workers alive."""
    # The forkserver preloads the decoder's module (found through PYTHONPATH: Python 3.11's
    # forkserver ignores the parent's sys.path); importing the cache there, as
    # xraygan.data.dicom does in real use, makes each worker a cheap fork. A worker that runs
    # decode() has run its initializer (the lifeline watcher) and says so with a file.
    (tmp_path / "slowdecode.py").write_text(textwrap.dedent(f"""
        import os, time
        import xraygan.data.cache

        def decode(path):
            open(os.path.join({str(tmp_path)!r}, "ready-%d" % os.getpid()), "w").close()
            time.sleep(120)
    """))
    script = textwrap.dedent("""
        import slowdecode
        from xraygan.data.cache import _decode_files

        class F:
            def __init__(self, i):
                self.path = self.rel = str(i)
        if __name__ == "__main__":
            _decode_files([F(i) for i in range(4)], slowdecode.decode, lambda *a, **k: None, 2)
    """)
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), repo])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)
    kids: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(list(tmp_path.glob("ready-*"))) < 2:
            time.sleep(0.2)
        kids = _children(proc.pid)  # the forkserver, two workers, the resource tracker
        assert len(list(tmp_path.glob("ready-*"))) == 2, f"workers did not start: {kids}"
        assert {int(p.name[6:]) for p in tmp_path.glob("ready-*")} <= kids
        workers = {int(p.name[6:]) for p in tmp_path.glob("ready-*")}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        t_kill = time.monotonic()
        while time.monotonic() < t_kill + 20 and any(_alive(k) for k in kids):
            time.sleep(0.1)
            if time.monotonic() > t_kill + 5:  # the workers go at once (their lifeline is cut)
                assert not [w for w in workers if _alive(w)], "workers outlived their parent"
        # then the forkserver and resource tracker, whose last clients were the workers (their
        # interpreter shutdown takes a few seconds on a loaded machine)
        left = {k: _cmdline(k) for k in kids if _alive(k)}
        assert not left, f"preparation processes outlived their parent: {left}"
    finally:  # whatever failed, leave no process of this test behind
        if proc.poll() is None:
            kids |= _children(proc.pid)
            proc.kill()
            proc.wait(10)
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
