"""Ablations as Optuna studies: every trial is one training run, scored by xraygan.metrics.

Studies (``xraygan sweep --list``), one module each:

    table1           Table I's four configurations (AdaS/ELU, Adam/ELU, AdaS/ELU/TTUR,
                     AdaS with DCGAN activations): FID, D-loss mean/var/std, T0, collapse flags
    table3           Table III's compression grid: strides, FC layers, latent size, widths, each
                     in D, G and both (12 cells) + the uncompressed baseline: FID, blockiness
    batchnorm        batch norm none / D / G / both: memory, throughput, quality
    fmaps            feature-map width 32..320 at 64 and 128 px: memory, throughput, quality
    compress-search  TPE with pruning: the smallest G without blurry squares near the deep FID
    seeds            one configuration over N seeds (mean and confidence interval)
    utility          train on synthetic, test on real: classifiers on real, generated and mixed
                     images, and the anatomy of generated images (docs/utility.md)

Helpers (not studies): ``xraygan.ablations.reference`` fills the FID statistics cache once
before a sweep (``xraygan sweep`` calls it when it has more than one worker); ``xraygan
fid-check STUDY`` re-scores a finished sweep's runs at 2,048 FID samples beside its reduced FID (``nox -s
fid_check``). Scales, seeds and workers of the quick reproduction: ablations/scale.py.

Storage layout (defaults): ``studies/<study>-<scale>.db`` (SQLite) and the run folders in
``studies/<study>-<scale>/NNNN-<cell>/``; the Optuna study is named ``<study>-<scale>``.

Trial user attributes (a stable contract: ``xraygan report`` reads these):

    study            registry name of the study (table1, ...)
    scale            quick | full (the scale's settings are the study attr ``scale``)
    cell             the cell key, unique in a grid study (adas-elu, strides-g, w64-s128, seed3)
    cell_params      dict of the factors the cell sets ({"optimizer": "adas", "ttur": true, ...})
    reference        true for the baseline / reference cell (table3 baseline, compress-search)
    config           the full ExperimentConfig as a dict (ExperimentConfig.from_dict reads it)
    seed             train.seed
    run_dir          absolute path of the run folder (on ``host``)
    host, pid        where it ran
    status           a TrialStatus (gan_core/trials.py): waiting | running | completed |
                     diverged | pruned | error | interrupted | duplicate. A FAIL trial with any
                     other status (normally "running") was killed: its heartbeat went stale;
                     its retry carries ``retry_of``. ``ablations.runner.outcome(trial)``
                     applies this rule.
    failure          the reason, for every status but completed (the TrainingDiverged message
                     for diverged trials: which loss, at which step)
    metrics          flat dict from xraygan.metrics.run_metrics (fid, d_loss_mean, d_loss_var,
                     d_loss_std, t0, collapse_detected, blockiness, fid_infinity, ...; NaN stored
                     as null)
    metric.NAME      each finite number of ``metrics`` again as its own attr (metric.fid,
                     metric.kid, metric.d_loss_mean, ...): optuna-dashboard sorts and plots these
    objective        name of the quantity that is the trial's value (fid, or a fallback)
    peak_memory_bytes  measured peak of one training step (CUDA: the whole run's peak)
    memory           {measured_peak_bytes, measured_resident_bytes, method, device,
                      estimate_bytes, estimate: {params, grads, optimizer_state, batch,
                      activations, workspace, resident, total}}
    wall_time_s      the whole trial: training, evaluation, memory measurement
    train_time_s, eval_time_s, images_per_s, params_g, params_d, steps
    resumed_from_step  set when the trial continued a killed trial's checkpoint
    retry_of, retry_history  the trial(s) this one re-runs
    constraints, feasible, blockiness_excess, fid_ratio   compress-search only
    fingerprint      the machine (xraygan.fingerprint.fingerprint of the trial's device)
    intermediate     what the intermediate values are: "d_loss_mean (running)" | "blockiness"

Trial params: a grid cell's factors (cell_params, non-scalars as str), each with a
CategoricalDistribution over the grid's values (ablations.runner.grid_distributions).
Study user attributes: study, scale (dict of the Scale), data, seeds, base_config, and
claims_protocol: the protocols of the study's claims (reports.claim_protocol.registration:
canonical JSON and sha256), stored before the first trial and never replaced.
Study metric names: [objective] once a trial completes.
Intermediate values (``trial.report``): grid studies, the running mean of the logged D loss
(at most 50 reports per trial; the last equals metrics.d_loss_mean); compress-search,
blockiness of each sample grid, at its step (what its pruner judges).
"""

from __future__ import annotations


def load_studies() -> None:
    """Import every study module (each registers itself in ``spec.STUDIES``). Deferred to the
    first use: the study modules import Optuna and the claims, which ``xraygan --help`` and the
    package's light names (scales, the spec) do not need."""
    from . import (  # noqa: F401  (each registers its study)
        batchnorm,
        compress_search,
        fmaps,
        seeds,
        table1,
        table3,
        utility,
    )


from .scale import FULL, QUICK, SCALES, Scale, base_config  # noqa: E402
from .spec import STUDIES, Cell, StudyContext, StudySpec  # noqa: E402

__all__ = ["FULL", "QUICK", "SCALES", "STUDIES", "Cell", "Scale", "StudyContext", "StudySpec",
           "base_config", "load_studies"]
