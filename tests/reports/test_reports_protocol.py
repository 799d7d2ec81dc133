"""The protocol lists the machine fingerprints the trials ran on, and says when one is missing."""

import json

import pandas as pd

from xraygan.fingerprint import fingerprint
from xraygan.reports.protocol import machine_fingerprints, machines_line, protocol_rows

AVX2 = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "native_bf16": False,
        "cores_available": 2, "torch": "2.14.1+cu130", "machine_class": "cpu-avx2-torch2.14"}
AVX512 = {"cpu_model": "AMD EPYC 9B14", "cpu_capability": "AVX512", "native_bf16": True,
          "cores_available": 4, "torch": "2.14.1"}


def test_machines_from_trial_attrs_summaries_and_old_runs(tmp_path):
    run = tmp_path / "run-with-summary"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"status": "completed", "machine": AVX512}))
    old = tmp_path / "old-run"
    old.mkdir()
    (old / "summary.json").write_text(json.dumps({"status": "completed"}))
    df = pd.DataFrame({"machine": [AVX2, AVX2, None, None, None],
                       "run_dir": ["", "", str(run), str(old), ""]})
    assert machine_fingerprints(df) == [
        ("cpu-avx2-torch2.14", "AMD EPYC (AVX2, no native bf16), 2 cores, torch 2.14.1", 2),
        ("cpu-avx512-torch2.14", "AMD EPYC 9B14 (AVX512, native bf16), 4 cores, torch 2.14.1", 1),
        ("not recorded", "", 2),
    ]
    line = machines_line(df)
    assert line.startswith("cpu-avx2-torch2.14: AMD EPYC (AVX2, no native bf16), 2 cores")
    assert line.endswith("not recorded (2 trials, run before fingerprints)")


def test_frame_without_machine_column_is_not_recorded():
    df = pd.DataFrame({"run_dir": ["/nonexistent/run"], "seed": [0]})
    assert machines_line(df) == "not recorded (1 trial, run before fingerprints)"
    assert machines_line(pd.DataFrame()) == "—"


def test_protocol_rows_carry_the_machines_row():
    df = pd.DataFrame({"machine": [fingerprint()], "run_dir": [""], "seed": [0]})
    rows = dict(protocol_rows(df, checksum=False))
    assert rows["Machines (fingerprint)"].startswith(fingerprint()["machine_class"] + ": ")


def test_trial_attr_fingerprint_reaches_the_frame():
    from xraygan.reports.load import record

    row = record({"fingerprint": AVX2, "run_dir": ""}, trial=0)
    assert row["machine"] == AVX2
    assert record({"machine": AVX512}, trial=1)["machine"] == AVX512
    assert record({}, trial=2)["machine"] is None


def test_report_machine_names_the_cpu_in_words():
    from xraygan.reports.protocol import report_machine

    line = report_machine()
    assert "?" not in line and " cores, torch " in line
