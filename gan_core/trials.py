"""What happened to a sweep trial, in one word: the ``status`` user attr of every trial.

Optuna's ``TrialState`` says whether a trial is waiting, running, complete, pruned or failed;
this says why a FAIL trial failed (diverged, error, interrupted, duplicate), which decides
whether it is retried. A FAIL trial with any other status (normally RUNNING) was killed: its
heartbeat went stale before it could write a status (xraygan.ablations.runner.outcome).
Run folders have their own statuses (xraygan.runs.RunStatus).
"""

from enum import StrEnum

import pandas as pd


class TrialStatus(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"
    PRUNED = "pruned"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    DUPLICATE = "duplicate"


FAILED_ON_PURPOSE = frozenset({TrialStatus.DIVERGED, TrialStatus.ERROR, TrialStatus.INTERRUPTED,
                               TrialStatus.DUPLICATE})
"""FAIL trials that wrote why they failed: not killed, so not retried as killed ones are."""


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """Trials (rows of a trials frame) whose run finished and was scored."""
    return df[df["status"] == TrialStatus.COMPLETED]
