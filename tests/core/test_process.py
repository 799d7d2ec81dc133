"""Process-level policy (gan_core/process.py): who wins for the wait policy, how many threads,
what is recorded, and the adaptive thread governor (driven by a fake clock: no timing)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from xraygan import process

BUSY_CORES = process.busy_cores  # the real one (the fixture below stubs it for other tests)

@pytest.fixture(autouse=True)
def _restore_process_state(monkeypatch):
    # the machine running the tests is shared: without this, a busy neighbour would change the
    # thread counts the tests below expect (the tests of the detection set their own)
    monkeypatch.setattr(process, "busy_cores", lambda *a, **k: 0.0)
    threads = torch.get_num_threads()
    settings, governor = dict(process._settings), process._governor
    yield
    torch.set_num_threads(threads)
    process._settings.clear()
    process._settings.update(settings)
    process._governor = governor


WAIT_PROBE = """
import json, sys
from xraygan import process
value = process.set_wait_policy(sys.argv[1] if len(sys.argv) > 1 else None)
import os
print(json.dumps({"value": value, "env": os.environ.get("OMP_WAIT_POLICY"),
                  "spin_env": os.environ.get("GOMP_SPINCOUNT"), **process._wait}))
"""


def _wait_probe(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", WAIT_PROBE, *args], capture_output=True, text=True,
                         check=True, env={**base, **env})
    return json.loads(out.stdout)


def test_an_explicit_user_wait_policy_wins():
    r = _wait_probe("ACTIVE", OMP_WAIT_POLICY="PASSIVE")
    assert r["value"] == r["env"] == "PASSIVE" and r["source"] == "user"


def test_the_wait_policy_is_set_before_torch_loads():
    r = _wait_probe("PASSIVE")
    assert r["value"] == r["env"] == "PASSIVE" and r["source"] == "xraygan"
    assert r["before_torch"] is True  # xraygan.process imports no torch
    default = _wait_probe()
    assert default["env"] is None and default["source"] == "libgomp default"


def test_a_short_spin_by_default_and_the_users_spin_count_wins():
    default = _wait_probe()
    assert default["spin_env"] == process.SPIN_COUNT and default["spincount_source"] == "xraygan"
    user = _wait_probe(GOMP_SPINCOUNT="5")
    assert user["spin_env"] == "5" and user["spincount_source"] == "user"
    explicit = _wait_probe(OMP_WAIT_POLICY="ACTIVE")  # the user chose the wait: leave libgomp be
    assert explicit["spin_env"] is None


def test_the_cli_entry_point_records_the_wait_policy_before_torch():
    code = ("import sys; from xraygan.cli import main; from xraygan import process; "
            "before = 'torch' in sys.modules; main(['presets', 'paper-elu']); "
            "print(before, 'torch' in sys.modules, process._wait['before_torch'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # importing the CLI loads no torch; the command does, and main() chose the wait policy
    # before it did
    assert out.stdout.split()[-3:] == ["False", "True", "True"]


@pytest.mark.parametrize("cores,workers,expected", [(2, 1, 2), (2, 2, 1), (16, 4, 4), (3, 2, 1), (1, 4, 1)])
def test_workers_times_threads_never_exceed_cores(cores, workers, expected):
    threads = process.threads_for(cores, workers)
    assert threads == expected and (threads * workers <= cores or threads == 1)


def test_small_models_get_one_thread():
    assert process.threads_for(8, 1, model_size_hint=10_000) == 1
    assert process.threads_for(8, 1, model_size_hint=5_000_000) == 8


def test_threads_never_exceed_the_cores_available(monkeypatch):
    monkeypatch.setattr(process, "cores_available", lambda: 2)
    monkeypatch.delenv("XRAYGAN_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    applied = process.apply_process_policy(role="train", threads=64)
    assert applied["threads"] == 2 == torch.get_num_threads()
    monkeypatch.setenv("XRAYGAN_THREADS", "9")
    applied = process.apply_process_policy(role="train")
    assert applied["threads"] == 2 and applied["threads_source"] == "XRAYGAN_THREADS"
    assert applied["adaptive"] is False  # the user fixed the threads: no governor


def test_applied_settings_record_what_was_applied(monkeypatch):
    monkeypatch.setattr(process, "cores_available", lambda: 2)
    monkeypatch.delenv("XRAYGAN_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    applied = process.apply_process_policy(role="sweep-worker", workers=2)
    assert applied["threads"] == 1 == torch.get_num_threads() and applied["workers"] == 2
    assert applied["adaptive"] is False  # one thread: nothing to adapt
    again = process.applied_settings()
    assert again["threads_now"] == 1 and again["role"] == "sweep-worker"
    assert again["malloc"] in ("mallopt", "environment", "off", "unavailable")
    applied = process.apply_process_policy(role="train")
    # two threads, fixed for the run: the governor changes the rounding, so it is opt-in
    assert applied["threads"] == 2 and applied["adaptive"] is False and applied["reproducible"]
    assert "governor" not in process.applied_settings()
    monkeypatch.setenv("XRAYGAN_ADAPTIVE_THREADS", "1")
    applied = process.apply_process_policy(role="train")
    assert applied["adaptive"] is True and applied["reproducible"] is False
    assert process.applied_settings()["governor"]["threads"] == 2
    assert process.reproducibility()["reproducible"] is False


def test_busy_cores_counts_other_processes_on_our_cpus(monkeypatch):
    monkeypatch.setattr(process.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    samples = iter([
        {0: (100, 1000), 1: (50, 1000), 2: (0, 1000)},
        # cpu0: 95 of 100 jiffies busy, cpu1: 10 of 100, cpu2 (not ours): all busy
        {0: (195, 1100), 1: (60, 1100), 2: (100, 1100)},
    ])
    busy = BUSY_CORES(0.5, times=lambda: next(samples), sleep=lambda s: None)
    assert busy == pytest.approx(1.05)
    assert process.free_cores(2, busy) == 1


@pytest.mark.parametrize(("cores", "busy", "free"), [
    (2, 0.0, 2), (2, 0.5, 2), (2, 0.7, 1), (2, 1.9, 1), (2, 3.0, 1), (16, 4.2, 12),
])
def test_free_cores(cores, busy, free):
    assert process.free_cores(cores, busy) == free


def test_cpu_times_reads_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\n"
                    "cpu1 5 0 5 30 10 0 0 0 0 0\nintr 1 2 3\n")
    assert process._cpu_times(stat) == {0: (10, 50), 1: (10, 50)}
    assert process._cpu_times(tmp_path / "missing") == {}


def test_a_busy_neighbour_lowers_the_threads_once_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(process, "cores_available", lambda: 2)
    monkeypatch.setattr(process, "busy_cores", lambda *a, **k: 0.98)
    monkeypatch.delenv("XRAYGAN_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("XRAYGAN_ADAPTIVE_THREADS", raising=False)
    applied = process.apply_process_policy(role="train")
    assert applied["threads"] == 1 == torch.get_num_threads()
    assert applied["threads_source"] == "policy, free cores at start"
    assert applied["neighbours_busy_cores"] == 0.98 and applied["reproducible"]
    assert process.reproducibility() == {"threads": 1, "reproducible": True,
                                         "threads_source": "policy, free cores at start"}
    err = capsys.readouterr().err
    assert "1.0 of 2 cores busy" in err and "1 thread instead of 2" in err
    # a resumed run keeps the count it recorded, whatever the load now
    applied = process.apply_process_policy(role="train", resume_threads=2)
    assert applied["threads"] == 2 and applied["threads_source"] == "resumed run"
    # the user's count and the CLI's other commands are left alone
    monkeypatch.setenv("XRAYGAN_THREADS", "2")
    assert process.apply_process_policy(role="train")["threads"] == 2
    monkeypatch.delenv("XRAYGAN_THREADS")
    assert process.apply_process_policy(role="cli")["threads"] == 2
    monkeypatch.setenv("XRAYGAN_DETECT_NEIGHBOURS", "0")
    assert process.apply_process_policy(role="train")["threads"] == 2
    assert capsys.readouterr().err == ""


def test_fingerprint_carries_the_applied_settings(monkeypatch):
    from xraygan.fingerprint import fingerprint

    monkeypatch.setattr(process, "cores_available", lambda: 1)
    process.apply_process_policy(role="cli")
    assert fingerprint()["process"]["threads"] == 1


def test_unknown_role_is_an_error():
    with pytest.raises(ValueError, match="role: expected train, sweep-worker or cli"):
        process.apply_process_policy(role="daemon")


def test_cgroup_quota_caps_the_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(process, "_cgroup_quota", lambda: 1.5)
    assert process.cores_available() == 1
    monkeypatch.setattr(process, "_cgroup_quota", lambda: None)
    assert process.cores_available() == 4


# --------------------------------------------------------------------------- the governor
class FakeMachine:
    """Step time as a function of the thread count and the number of busy neighbours."""

    def __init__(self):
        self.t, self.threads, self.busy = 0.0, 2, 0
        # seconds per step: quiet 2 threads fastest; one neighbour: 2 threads collapse
        self.table = {(2, 0): 0.10, (1, 0): 0.12, (2, 1): 0.30, (1, 1): 0.13}

    def clock(self):
        return self.t

    def set_threads(self, n):
        self.threads = n

    def run(self, gov, steps):
        seen = []
        for _ in range(steps):
            self.t += self.table[(self.threads, self.busy)]
            gov.tick()
            seen.append(self.threads)
        return seen


def test_governor_drops_a_thread_for_a_busy_neighbour_and_takes_it_back():
    m = FakeMachine()
    gov = process.ThreadGovernor(2, clock=m.clock, set_threads=m.set_threads, interval=5.0,
                                 max_interval=20.0)
    m.run(gov, 100)  # quiet: a probe finds 1 thread slower, 2 stay
    assert m.threads == 2 and gov.probes >= 1 and gov.switches == 0
    m.busy = 1
    m.run(gov, 100)  # the step time drifts by 3x: probe, switch to 1
    assert m.threads == 1 and gov.switches == 1
    m.busy = 0
    m.run(gov, 400)  # the periodic probe finds 2 threads faster again
    assert m.threads == 2 and gov.switches == 2
    assert gov.state() == {"threads": 2, "switches": 2, "probes": gov.probes}


def test_governor_backs_off_while_its_choice_stands():
    m = FakeMachine()
    gov = process.ThreadGovernor(2, clock=m.clock, set_threads=m.set_threads, interval=5.0,
                                 max_interval=40.0)
    m.run(gov, 2000)  # 200 s of quiet steps
    # probes at ~1 s, then after 5, 10, 20, 40, 40, ... s: at most 1 + 4 + 200/40
    assert 3 <= gov.probes <= 10 and gov.interval == 40.0


def test_governor_ignores_the_time_before_the_first_step():
    # the governor is made when the process policy is applied, long before the first step ends
    # (models, data, oneDNN's first call): that gap is no step time. Counted, it once made the
    # first window's 2-thread median 2.4 s and switched a quiet run to 1 thread (0.66x).
    m = FakeMachine()
    gov = process.ThreadGovernor(2, clock=m.clock, set_threads=m.set_threads, interval=5.0)
    m.t += 30.0  # setup
    m.run(gov, 100)
    assert m.threads == 2 and gov.probes >= 1 and gov.switches == 0
