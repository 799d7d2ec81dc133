"""The GPU check's dry run on the CPU (benchmarks/gpu_check.py at tiny sizes): every part runs
and writes its figures, so the script is known to work before a GPU window opens."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
DRY_RUN = ["--device", "cpu", "--image-size", "16", "--features", "4", "--batch", "4",
           "--steps", "2", "--inception-images", "3", "--throughput-batch", "2",
           "--throughput-steps", "1", "--rounds", "1", "--seeds", "1", "--table1-steps", "2",
           "--fid-samples", "2", "--num-images", "8",
           "--sweep-args", "--image-size", "16", "--features", "4", "--batch-size", "4",
           "--no-estimate", "--cells", "adas-elu", "adam-elu"]


@pytest.fixture(scope="module")
def gpu_check(weights):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_dry_run_on_cpu(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYGAN_FID_STATS", str(tmp_path / "stats"))
    out = tmp_path / "out"
    assert gpu_check.main([*DRY_RUN[:2], "--out", str(out), *DRY_RUN[2:]]) == 0
    res = json.loads((out / "gpu_check.json").read_text())
    assert not res["errors"]
    amp = {(r["optimizer"], r["amp"]): r for r in res["amp"]}
    assert set(amp) == {(o, a) for o in ("adas", "adam") for a in ("fp32", "bf16", "fp16")}
    for (_, mode), r in amp.items():
        assert r["ok"] and r["peak_bytes"] > 0 and r["estimate_bytes"] > 0
        assert ("grad_scale" in r) == (mode == "fp16")  # the GradScaler runs with fp16 only
    inc = res["inception"]
    assert inc["max_abs_diff"] == 0.0 and inc["fid_abs_diff"] == 0.0  # cpu against cpu
    thr = res["throughput"]
    assert thr["reference_images_per_s"] > 0 and thr["ours_images_per_s"] > 0
    t1 = res["table1"]
    assert t1["sweep_exit"] == 0 and t1["report_exit"] == 0 and Path(t1["report"]).is_file()
    assert sorted(t["cell"] for t in t1["trials"]) == ["adam-elu", "adas-elu"]
    md = (out / "gpu_check.md").read_text()
    for heading in ("## AMP steps", "## Inception features", "## Throughput", "## Table I"):
        assert heading in md


def test_gpu_check_refuses_cuda_without_a_gpu(gpu_check, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gpu_check.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err
