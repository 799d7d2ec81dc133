"""How a sweep tells a dead worker from a slow one: the defaults of ``--heartbeat``, ``--grace``
and ``--max-retry``. A module of its own, without Optuna, so the command line can show them in
its help without loading the storage layer (xraygan.ablations.storage uses them)."""

HEARTBEAT_S = 30
GRACE_S = 120  # four missed heartbeats: a busy machine is not a dead one
MAX_RETRY = 2  # a trial killed three times is left failed (something kills it on purpose)
