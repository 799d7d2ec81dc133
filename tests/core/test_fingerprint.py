"""The machine fingerprint: fields, JSON, the class key, the cgroup quota and the human line."""

import json
import os
import re

import torch

from xraygan import fingerprint as fpmod
from xraygan.fingerprint import describe, fingerprint, has_native_bf16, machine_class

KEYS = {"cpu_model", "cpu_capability", "native_bf16", "cpu_flags_summary", "cores_available",
        "cpu_count", "torch", "onednn", "cuda", "python", "platform", "process", "machine_class"}


def test_fingerprint_fields_and_json_round_trip():
    fp = fingerprint()
    assert KEYS <= set(fp)
    assert json.loads(json.dumps(fp)) == fp
    assert fp["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert fp["torch"] == torch.__version__
    assert 1 <= fp["cores_available"] <= len(os.sched_getaffinity(0))
    assert fp["native_bf16"] == has_native_bf16()
    assert set(fp["cpu_flags_summary"]) >= {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert fp["process"]["threads"] >= 1
    assert "gpu_name" not in fp  # CPU device: no GPU fields
    assert os.uname().nodename not in json.dumps(fp)


def test_machine_class_keys():
    assert re.fullmatch(r"cpu-[a-z0-9_]+-torch\d+\.\d+", machine_class())
    assert machine_class({"cpu_capability": "AVX512", "torch": "2.14.1+cu130"}) == "cpu-avx512-torch2.14"
    assert machine_class({"cpu_capability": "AVX2", "torch": "2.15.0"}) == "cpu-avx2-torch2.15"
    gpu = {"cpu_capability": "AVX2", "torch": "2.14.1", "gpu_capability": "9.0"}
    assert machine_class(gpu) == "cuda-sm90-torch2.14"
    # the CPU model is not part of the key: same ISA level, same kernels
    a = {"cpu_model": "AMD EPYC 7B13", "cpu_capability": "AVX2", "torch": "2.14.1"}
    b = {**a, "cpu_model": "Intel(R) Xeon(R) CPU E5-2690 v3"}
    assert machine_class(a) == machine_class(b)


def test_describe_names_isa_bf16_cores_torch():
    fp = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "native_bf16": False,
          "cores_available": 2, "torch": "2.14.1+cu130"}
    assert describe(fp) == "AMD EPYC (AVX2, no native bf16), 2 cores, torch 2.14.1"
    fp.update(native_bf16=True, gpu_name="H100", gpu_capability="9.0", cuda="13.0")
    assert describe(fp).endswith("native bf16), 2 cores, torch 2.14.1, H100 (sm 9.0, CUDA 13.0)")


def test_cgroup_quota_v2_and_v1(tmp_path):
    proc = tmp_path / "cgroup"
    (tmp_path / "fs" / "job").mkdir(parents=True)
    proc.write_text("0::/job\n")
    (tmp_path / "fs" / "job" / "cpu.max").write_text("150000 100000\n")
    assert fpmod._cgroup_cpu_quota(tmp_path / "fs", proc) == 1.5
    (tmp_path / "fs" / "job" / "cpu.max").write_text("max 100000\n")
    assert fpmod._cgroup_cpu_quota(tmp_path / "fs", proc) is None
    v1 = tmp_path / "fs" / "cpu,cpuacct" / "box"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    proc.write_text("4:memory:/x\n2:cpu,cpuacct:/box\n")
    assert fpmod._cgroup_cpu_quota(tmp_path / "fs", proc) == 2.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert fpmod._cgroup_cpu_quota(tmp_path / "fs", proc) is None
