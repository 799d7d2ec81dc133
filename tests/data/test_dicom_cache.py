"""Preparing DICOM folders into the cache: round trip, reuse, rebuild, resume, labels, bad files,
loaders and the ``xraygan data`` command. Phantom DICOMs at 128 px keep it fast."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch

from xraygan.cli import main
from xraygan.config import DataConfig
from xraygan.data import dicom_writer as writer
from xraygan.data import load_dataset
from xraygan.data.cache import INDEX, Journal, load_cache, read_index
from xraygan.data.dicom import (
    PrepSettings,
    default_cache_dir,
    find_dicom_files,
    prepare,
    process_file,
)
from xraygan.errors import ConfigError, DataError

N_TRAIN, N_TEST, SIZE = 8, 2, 128


@pytest.fixture(scope="module")
def vinbig(tmp_path_factory) -> Path:
    """A VinBigData-shaped phantom folder (JPEG 2000), written once; tests copy it to modify."""
    root = tmp_path_factory.mktemp("vinbig")
    writer.write_phantom_dicoms(root, N_TRAIN, SIZE, seed=1, codec="j2k", test_count=N_TEST)
    return root


@pytest.fixture
def folder(vinbig, tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(vinbig, dst)
    return dst


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XRAYGAN_CACHE_DIR", str(home))
    monkeypatch.setenv("XRAYGAN_WORKERS", "1")  # a worker pool costs seconds to start
    return home


def _prep(src, cache, **kw):
    kw.setdefault("workers", 1)
    kw.setdefault("progress", False)
    return prepare(src, PrepSettings(sizes=kw.pop("sizes", (32, 64)), square=kw.pop("square", "crop")),
                   cache_dir=cache, **kw)


# --------------------------------------------------------------------------- the writer


def test_writer_lays_out_vinbigdata(vinbig):
    train = sorted((vinbig / "train").glob("*.dicom"))
    test = sorted((vinbig / "test").glob("*.dicom"))
    assert len(train) == N_TRAIN and len(test) == N_TEST
    assert all(len(p.stem) == 32 and int(p.stem, 16) >= 0 for p in train + test)
    table = pd.read_csv(vinbig / "train.csv")
    assert tuple(table.columns) == writer.CSV_COLUMNS
    assert set(table.image_id) == {p.stem for p in train}
    assert (table.groupby("image_id").rad_id.nunique() == 3).all()
    assert set(table.class_id) <= set(range(15))
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in train + test]
    assert {h.PhotometricInterpretation for h in headers} == {"MONOCHROME1", "MONOCHROME2"}
    assert {str(h.file_meta.TransferSyntaxUID) for h in headers} == {"1.2.840.10008.1.2.4.90"}
    assert all((h.BitsAllocated, h.BitsStored, h.PixelRepresentation) == (16, 12, 0) for h in headers)
    assert any(h.Rows != h.Columns for h in headers) and max(max(h.Rows, h.Columns) for h in headers) == SIZE


def test_writer_j2k_is_lossless(vinbig, tmp_path):
    writer.write_phantom_dicoms(tmp_path, N_TRAIN, SIZE, seed=1, codec="raw")
    for p in sorted((tmp_path / "train").glob("*.dicom"))[:3]:
        raw = pydicom.dcmread(p)
        j2k = pydicom.dcmread(vinbig / "train" / p.name)
        assert str(raw.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
        assert raw.pixel_array.max() <= 4095
        np.testing.assert_array_equal(raw.pixel_array, j2k.pixel_array)


def test_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="codec"):
        writer.write_phantom_dicoms(tmp_path, 1, 64, codec="jpeg")
    with pytest.raises(ConfigError, match="32"):
        writer.write_phantom_dicoms(tmp_path, 1, 16, codec="j2k")


# --------------------------------------------------------------------------- prepare + load


def test_prepare_round_trip_through_load_dataset(folder, cache_home):
    ds = load_dataset(DataConfig(source=f"dicom:{folder}", num_images=0), 64, 1)
    assert ds.images.shape == (N_TRAIN + N_TEST, 1, 64, 64) and ds.images.dtype == torch.uint8
    assert ds.skipped == []
    # the same pixels as decoding one file by hand (index order = sorted relative paths)
    files = find_dicom_files(folder)
    first, _ = process_file(files[0].path, PrepSettings(sizes=(64,)))
    np.testing.assert_array_equal(ds.images[0, 0].numpy(), first[64])
    # radiograph orientation: lungs (upper half, left/right of centre) darker than the centre
    x = ds.images[:, 0].float()
    lungs = x[:, 18:34, 12:24].mean(dim=(1, 2))
    centre = x[:, 18:40, 29:35].mean(dim=(1, 2))
    assert (lungs < centre - 15).all(), (lungs, centre)  # every image: MONOCHROME1 ones inverted
    # the cache: loaded again without the source folder, same images and fingerprint
    cache_dir = next(cache_home.iterdir())
    shutil.rmtree(folder)
    again = load_dataset(DataConfig(source=f"cache:{cache_dir}", num_images=0), 64, 3)
    assert again.images.shape == (N_TRAIN + N_TEST, 3, 64, 64)
    assert torch.equal(again.images[:, 1], ds.images[:, 0])
    sub = load_dataset(DataConfig(source=f"cache:{cache_dir}", num_images=4, seed=5), 64, 1)
    assert len(sub) == 4 and sub.fingerprint != ds.fingerprint


def test_cache_reused_then_rebuilt_on_change(folder, tmp_path):
    cache = tmp_path / "c"
    first = _prep(folder, cache)
    assert not first.reused and first.decoded == N_TRAIN + N_TEST and first.count == N_TRAIN + N_TEST
    index_mtime = (cache / INDEX).stat().st_mtime_ns
    again = _prep(folder, cache)
    assert again.reused and again.decoded == 0 and (cache / INDEX).stat().st_mtime_ns == index_mtime

    # a file changes (new mtime): only it is decoded again
    victim = sorted((folder / "train").glob("*.dicom"))[0]
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    changed = _prep(folder, cache)
    assert not changed.reused and changed.decoded == 1 and changed.from_journal == N_TRAIN + N_TEST - 1

    # a file is added: one more image, one decode
    shutil.copy(victim, folder / "train" / ("f" * 32 + ".dicom"))
    added = _prep(folder, cache)
    assert added.decoded == 1 and added.count == N_TRAIN + N_TEST + 1
    assert np.load(cache / "images_64.npy").shape == (N_TRAIN + N_TEST + 1, 64, 64)

    # other pixel settings: everything decoded again, into its own journal
    padded = _prep(folder, cache, square="pad")
    assert padded.decoded == N_TRAIN + N_TEST + 1
    assert read_index(cache)["settings"]["square"] == "pad"
    assert len(list(cache.glob("journal-*.bin"))) == 2


def test_prepare_resumes_after_kill(folder, tmp_path):
    cache = tmp_path / "c"
    first_run: list[str] = []

    def killed_after_3(rel: str, ok: bool) -> None:
        first_run.append(rel)
        if len(first_run) == 3:
            raise KeyboardInterrupt  # what Ctrl-C (or a kill) does half-way

    with pytest.raises(KeyboardInterrupt):
        _prep(folder, cache, on_result=killed_after_3)
    assert not (cache / INDEX).exists()

    second_run: list[str] = []
    result = _prep(folder, cache, on_result=lambda rel, ok: second_run.append(rel))
    assert len(second_run) == N_TRAIN + N_TEST - 3 and not set(second_run) & set(first_run)
    assert result.from_journal == 3 and result.count == N_TRAIN + N_TEST


def test_torn_journal_record_is_dropped(folder, tmp_path):
    cache = tmp_path / "c"
    _prep(folder, cache)
    journal = next(cache.glob("journal-*.bin"))
    size = journal.stat().st_size
    # a kill in the middle of appending a record leaves a partial record at the end
    with open(journal, "ab") as f:
        f.write(b"XGJ1" + b"\x20\x00\x00\x00" + b"\x00" * 9)
    j = Journal(journal, (32, 64))
    assert len(j) == N_TRAIN + N_TEST and journal.stat().st_size == size
    j.close()
    (cache / INDEX).unlink()
    assert _prep(folder, cache).decoded == 0


def test_two_workers_give_the_same_cache(folder, tmp_path):
    one = _prep(folder, tmp_path / "one", sizes=(32,))
    two = _prep(folder, tmp_path / "two", sizes=(32,), workers=2)
    assert two.decoded == N_TRAIN + N_TEST
    np.testing.assert_array_equal(np.load(tmp_path / "one" / "images_32.npy"),
                                  np.load(tmp_path / "two" / "images_32.npy"))
    assert one.index["images"] == two.index["images"]


# --------------------------------------------------------------------------- selection


def _labels_by_image(folder: Path) -> dict[str, set[str]]:
    table = pd.read_csv(folder / "train.csv")
    return {i: set(g.class_name) for i, g in table.groupby("image_id")}


def test_label_filtering(folder, tmp_path):
    labels = _labels_by_image(folder)
    normal = {i for i, names in labels.items() if names == {"No finding"}}
    assert 0 < len(normal) < N_TRAIN  # the fixture has both kinds
    r = _prep(folder, tmp_path / "a", labels=["No finding"])
    assert {im["id"] for im in r.index["images"]} == normal
    assert all(im["path"].startswith("train/") for im in r.index["images"])
    # class ids and any case work too
    r14 = _prep(folder, tmp_path / "b", labels=["14"])
    assert {im["id"] for im in r14.index["images"]} == normal
    finding = sorted({n for names in labels.values() for n in names} - {"No finding"})[0]
    rf = _prep(folder, tmp_path / "c", labels=[finding.upper()])
    assert {im["id"] for im in rf.index["images"]} == {i for i, n in labels.items() if finding in n}
    with pytest.raises(ConfigError, match="No finding"):
        _prep(folder, tmp_path / "d", labels=["Broken leg"])
    (folder / "train.csv").unlink()
    with pytest.raises(DataError, match="train.csv"):
        _prep(folder, tmp_path / "e", labels=["No finding"])


def test_dicom_loader_uses_the_prepared_selection(folder, cache_home):
    """`data prepare --labels ...` then `train --data dicom:PATH` trains on that selection."""
    normal = {i for i, n in _labels_by_image(folder).items() if n == {"No finding"}}
    prepared = prepare(folder, PrepSettings(sizes=(32, 64), square="pad"), labels=["No finding"],
                       workers=1, progress=False)
    seen: list[str] = []
    ds = load_dataset(DataConfig(source=f"dicom:{folder}", num_images=0), 64, 1)
    assert len(ds) == len(normal) == prepared.count
    again = prepare(folder, PrepSettings(sizes=(32, 64), square="pad"), labels=["No finding"],
                    workers=1, progress=False, on_result=lambda rel, ok: seen.append(rel))
    assert again.reused and not seen and default_cache_dir(folder) == prepared.cache_dir
    # a size the cache lacks is added, keeping the selection; decoded results of other sizes
    # cannot be reused (one journal per pixel settings), the selection stays the same
    ds16 = load_dataset(DataConfig(source=f"dicom:{folder}", num_images=0), 16, 1)
    assert len(ds16) == len(normal) and read_index(prepared.cache_dir)["sizes"] == [16, 32, 64]


def test_limit_tops_up_past_bad_files(folder, tmp_path):
    for i in range(6):
        (folder / "train" / f"bad{i}.dicom").write_bytes(b"not a radiograph")
    r = _prep(folder, tmp_path / "c", limit=5, seed=0)
    assert r.count == 5
    assert all(reason.startswith("not DICOM") for _, reason in r.skipped)
    # a different seed picks another subset of the same size
    r2 = _prep(folder, tmp_path / "c2", limit=5, seed=1)
    assert r2.count == 5 and r2.index["images"] != r.index["images"]


# --------------------------------------------------------------------------- bad files, errors


def test_bad_files_listed_good_ones_all_kept(folder, tmp_path):
    good = find_dicom_files(folder)
    raw = good[0]
    data = Path(raw.path).read_bytes()
    (folder / "train" / "truncated.dicom").write_bytes(data[: len(data) // 2])
    (folder / "train" / "stub.dcm").write_bytes(data[:200])
    (folder / "train" / "notes.dcm").write_bytes(b"hello")
    (folder / "export").mkdir()
    (folder / "export" / "IM0001").write_bytes(data)  # no suffix, DICM preamble: found
    (folder / "export" / "readme.txt").write_bytes(b"ignored: no suffix match, no preamble")
    r = _prep(folder, tmp_path / "c")
    assert r.count == len(good) + 1
    reasons = dict(r.skipped)
    assert set(reasons) == {"train/truncated.dicom", "train/stub.dcm", "train/notes.dcm"}
    assert reasons["train/notes.dcm"].startswith("not DICOM")
    assert reasons["train/truncated.dicom"].startswith("truncated")
    assert read_index(tmp_path / "c")["skipped_counts"] == {"truncated": 2, "not DICOM": 1}
    ds = load_cache(tmp_path / "c", 32)
    assert len(ds) == len(good) + 1 and len(ds.skipped) == 3


def test_empty_and_unusable_folders_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty.*no DICOM files"):
        _prep(tmp_path / "empty", tmp_path / "c")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.dcm").write_bytes(b"x")
    with pytest.raises(DataError, match=r"junk: no usable image among 1 file.*1 not DICOM"):
        _prep(tmp_path / "junk", tmp_path / "c")
    with pytest.raises(DataError, match="no prepared cache"):
        load_cache(tmp_path / "nowhere", 64)


def test_missing_size_in_cache_names_the_fix(folder, tmp_path):
    _prep(folder, tmp_path / "c", sizes=(32,))
    with pytest.raises(DataError, match="--sizes 64"):
        load_cache(tmp_path / "c", 64)


def _crash_on_stub(path: str, settings: PrepSettings):
    """A decoder that kills its process on one file, as a native library can."""
    if Path(path).name.startswith("0"):
        os._exit(1)
    return process_file(path, settings)


def test_decoder_crash_is_reported_not_fatal(folder, tmp_path):
    import functools

    from xraygan.data.cache import build_cache

    files = find_dicom_files(folder)
    crashing = [f for f in files if Path(f.rel).name.startswith("0")]
    if not crashing:
        shutil.copy(files[0].path, folder / "train" / ("0" * 32 + ".dicom"))
        files = find_dicom_files(folder)
        crashing = [f for f in files if Path(f.rel).name.startswith("0")]
    files = [f for f in files if f not in crashing][:3] + crashing
    settings = PrepSettings(sizes=(32,))
    r = build_cache(tmp_path / "c", source=str(folder), files=files,
                    decode=functools.partial(_crash_on_stub, settings=settings),
                    settings=settings.key(), selection={}, sizes=(32,), workers=2, progress=False)
    assert r.count == 3
    assert {p for p, _ in r.skipped} == {f.rel for f in crashing}
    assert all("crashed" in reason for _, reason in r.skipped)


# --------------------------------------------------------------------------- the command


def test_cli_prepare_phantom_preview(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["data", "phantom-dicom", str(out), "--count", "4", "--size", "64", "--codec", "raw"]) == 0
    assert len(list((out / "train").glob("*.dicom"))) == 4
    (out / "train" / "broken.dicom").write_bytes(b"\x00" * 50)
    cache = tmp_path / "cache"
    args = ["data", "prepare", str(out), "--sizes", "32", "--workers", "1", "--cache", str(cache),
            "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "prepared 4 images at 32 px" in text
    assert "skipped 1 of 5 files (1 not DICOM)" in text and "train/broken.dicom: not DICOM" in text
    assert main(args) == 0
    assert "cache up to date" in capsys.readouterr().out
    grid = tmp_path / "grid.png"
    assert main(["data", "preview", f"cache:{cache}", "--out", str(grid), "--size", "32"]) == 0
    assert grid.stat().st_size > 100
    (tmp_path / "none").mkdir()
    assert main(["data", "prepare", str(tmp_path / "none"), "--cache", str(cache)]) == 2
    assert "none: no DICOM files found" in capsys.readouterr().err


def test_phantom_dicom_folder_trains(folder, tmp_path):
    """The issue's end-to-end check: VinBigData-shaped DICOMs -> prepare -> a (tiny) training run."""
    (folder / "train" / "broken.dicom").write_bytes(b"\x00" * 300)
    runs = tmp_path / "runs"
    rc = main(["train", "--data", f"dicom:{folder}", "--num-images", "0", "--image-size", "32",
               "--features", "8", "--steps", "2", "--batch-size", "4", "--out", str(runs),
               "--no-eval", "--no-progress"])
    assert rc == 0
    (run,) = runs.iterdir()
    assert (run / "config.json").is_file() and (run / "checkpoints" / "last.pt").is_file()
    index = read_index(next((tmp_path / "cache-home").iterdir()))
    assert index["count"] == N_TRAIN + N_TEST and index["sizes"] == [32]
    assert [s["path"] for s in index["skipped"]] == ["train/broken.dicom"]
