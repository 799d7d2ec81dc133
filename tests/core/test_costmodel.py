"""The sweep-time estimate's arithmetic (gan_core/costmodel.py), on fake calibrations: no
timing is asserted anywhere."""

import pytest

from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.costmodel import (
    Calibration,
    TrialPlan,
    config_signature,
    describe,
    estimate,
    format_duration,
    plan_trials,
)

CAL = Calibration(steps_per_s={"a": 10.0, "b": 5.0}, generate_images_per_s={"a": 1000.0, "b": 1000.0},
                  feature_images_per_s=100.0, threads=2, seconds=3.0, machine="fake CPU")


def test_one_worker_sums_train_fid_and_reference_once():
    plans = [TrialPlan("x", "a", steps=1000, fid_samples=2000), TrialPlan("y", "b", steps=1000, fid_samples=2000)]
    est = estimate(plans, CAL, workers=1, reference_images=2560)
    # train 100 + 200; FID per trial 2000/1000 + 2000/100 = 22; reference 25.6
    assert est.train_s == pytest.approx(300.0)
    assert est.fid_s == pytest.approx(44.0)
    assert est.reference_s == pytest.approx(25.6)
    assert est.total_s == pytest.approx(300 + 44 + 25.6)
    assert est.per_trial_s == pytest.approx({"x": 122.0, "y": 222.0})
    assert est.complete and est.trials == 2


def test_workers_pack_longest_first():
    plans = [TrialPlan(f"t{i}", "a", steps=s, fid_samples=0) for i, s in enumerate([300, 100, 100, 100])]
    est = estimate(plans, CAL, workers=2)
    # 30, 10, 10, 10 s onto two workers: {30} and {10, 10, 10}: the makespan is 30 s
    assert est.total_s == pytest.approx(30.0) and est.train_s == pytest.approx(60.0)
    assert estimate(plans, CAL, workers=8).total_s == pytest.approx(30.0)  # idle workers do not help


def test_no_fid_means_no_reference_statistics():
    plans = [TrialPlan("x", "a", steps=100, fid_samples=0)]
    est = estimate(plans, CAL, reference_images=5000)
    assert est.reference_s == 0 and est.fid_s == 0 and est.total_s == pytest.approx(10.0)


def test_cached_reference_is_not_counted():
    plans = [TrialPlan("x", "a", steps=100, fid_samples=100)]
    est = estimate(plans, CAL, reference_images=0, reference_cached=5000)
    assert est.reference_s == 0 and "of 5,000 real images cached" in est.notes[0]
    part = estimate(plans, CAL, reference_images=512, reference_cached=2048)
    assert part.reference_s == pytest.approx(512 / CAL.feature_images_per_s)


def test_missing_inception_makes_the_estimate_incomplete_and_says_why():
    cal = Calibration(steps_per_s={"a": 10.0}, feature_images_per_s=None,
                      feature_note="Inception weights unavailable (not found)")
    est = estimate([TrialPlan("x", "a", steps=100, fid_samples=100)], cal, reference_images=10)
    assert not est.complete and est.total_s == pytest.approx(10.0)
    text = describe(est, cal)
    assert "incomplete" in text and "Inception weights unavailable" in text


def test_an_uncalibrated_configuration_is_an_error():
    with pytest.raises(KeyError, match="no calibration for configuration 'zzz'"):
        estimate([TrialPlan("x", "zzz", steps=1, fid_samples=0)], CAL)


def test_describe_and_durations():
    est = estimate([TrialPlan("x", "a", steps=36000, fid_samples=0)], CAL)
    assert format_duration(est.total_s) == "1:00:00" and format_duration(75) == "1:15"
    assert describe(est, CAL).startswith("estimated time: 1:00:00 for 1 trials on 1 worker(s)")


def test_plans_from_configs_share_a_signature_across_seeds():
    def cfg(seed, optimizer="adas", steps=50):
        return ExperimentConfig(
            name="c", model=ModelConfig(image_size=16, g_features=8, d_features=8, latent_dim=16),
            optim=OptimConfig(name=optimizer), data=DataConfig(num_images=64),
            train=TrainConfig(steps=steps, batch_size=8, seed=seed))

    plans = plan_trials([("s0", cfg(0)), ("s1", cfg(1)), ("adam", cfg(0, "adam", 80))], fid_samples=16)
    assert plans[0].signature == plans[1].signature != plans[2].signature
    assert [p.steps for p in plans] == [50, 50, 80] and all(p.fid_samples == 16 for p in plans)
    assert config_signature(cfg(0)) == plans[0].signature


def test_calibrate_extrapolates_by_parameter_count_past_its_time_limit(monkeypatch):
    import xraygan.costmodel as cal_mod
    from xraygan.process import model_params

    monkeypatch.setattr(cal_mod, "_time_steps", lambda step, real, z, budget_s: 8.0)
    monkeypatch.setattr(cal_mod, "_time_generate", lambda G, latent, device: 400.0)
    monkeypatch.setattr(cal_mod, "_time_features", lambda size, device: (50.0, "fake"))

    def cfg(width):
        return ExperimentConfig(
            name="c", model=ModelConfig(image_size=16, g_features=width, d_features=width, latent_dim=16),
            optim=OptimConfig(name="adam"), data=DataConfig(num_images=64),
            train=TrainConfig(steps=10, batch_size=8, device="cpu"))

    small, big = cfg(8), cfg(16)
    cal = cal_mod.calibrate([small, big], fid=True, max_s=0.0)  # only the first is measured
    ratio = model_params(small.model) / model_params(big.model)
    assert cal.steps_per_s[config_signature(small)] == 8.0
    assert cal.steps_per_s[config_signature(big)] == pytest.approx(8.0 * ratio)
    assert cal.generate_images_per_s[config_signature(big)] == pytest.approx(400.0 * ratio)
    assert cal.feature_images_per_s == 50.0 and "1 of 2 configurations extrapolated" in cal.notes[0]
    est = estimate(plan_trials([("s", small), ("b", big)], fid_samples=0), cal)
    assert est.notes == cal.notes


def test_sweep_dry_run_prints_the_estimate(capsys, tmp_path):
    from xraygan.cli import main

    args = ["sweep", "table1", "--dry-run", "--out", str(tmp_path), "--steps", "5",
            "--image-size", "16", "--features", "8", "--num-images", "64", "--batch-size", "8",
            "--no-fid", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("estimated time"))
    assert "for 4 trials on 1 worker(s)" in line and "reference statistics 0:00" in line
    assert "steps/s" in out and not any(tmp_path.iterdir())  # a dry run writes nothing


def test_busy_neighbours_slow_the_workers_by_their_share_of_the_cores():
    import dataclasses

    from xraygan.costmodel import contention

    one_thread = dataclasses.replace(CAL, threads=1, cores=2)
    plans = [TrialPlan(f"t{i}", "a", steps=1000, fid_samples=0) for i in range(2)]
    quiet = estimate(plans, one_thread, workers=2)
    assert contention(one_thread, 2) == 1.0 and quiet.total_s == pytest.approx(100.0)
    # one busy process on 2 cores: calibrated alone (2 runnable: a core each), the sweep runs
    # 2 workers + the neighbour = 3 runnable on 2 cores, so each worker gets 2/3 of a core
    busy = dataclasses.replace(one_thread, others=1.0)
    assert contention(busy, 2) == pytest.approx(1.5)
    est = estimate(plans, busy, workers=2)
    assert est.total_s == pytest.approx(150.0)
    assert any("1 runnable task(s) of other processes on 2 cores" in n for n in est.notes)
    assert contention(busy, 1) == 1.0  # one worker: the calibration already saw that sharing
    assert contention(dataclasses.replace(busy, others=2.0), 2) == pytest.approx(4 / 3)
    assert contention(CAL, 2) == 1.0  # cores unknown: no correction


def test_procs_running_parse():
    from xraygan.costmodel import other_runnable, parse_procs_running

    text = "cpu  1 2 3\nctxt 55\nprocs_running 4\nprocs_blocked 0\n"
    assert parse_procs_running(text) == 4
    assert parse_procs_running("cpu 1 2 3\n") is None
    assert other_runnable(samples=1) >= 0.0
