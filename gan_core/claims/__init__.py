"""The claims engine: each of the paper's claims as a protocol registered before the data
(protocol.py), the registry and the step from findings to verdicts (engine.py), the tests and
Holm's correction (decide.py, stats.py), the claims themselves (table1.py, quality.py,
memory.py, utility.py) and their calibration on simulated studies (calibration.py).

It reads trials frames and memory frames and imports no study or report code: studies
register its protocols, reports render its verdicts.
"""

# Every claim module, imported here in the report's order, so that importing any part of
# xraygan.claims registers every claim (engine.CLAIMS); the modules import engine, never this
# package's namespace, so there is no import circle.
from . import table1, memory, quality, utility  # noqa: E402, F401, I001
