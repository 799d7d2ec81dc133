"""xraygan core: DCGAN-family models, optimizers, data, training, metrics and memory tools.

Follows Belmekki et al., "An Empirical Evaluation of Generative Adversarial Nets in
Synthesizing X-ray Chest Images" (ICIIBMS 2022).
"""

__version__ = "0.1.0"
