"""Frozen configs: one dataclass per concern, composed into an :class:`ExperimentConfig`.

Variants are made with :func:`dataclasses.replace`; the resolved config is written to the run
folder as JSON before step 0 and stored in every checkpoint, so a run can always be rebuilt
from its folder. ``from_dict`` rejects unknown keys with the valid list, so a stale or
hand-edited config fails loudly instead of silently training something else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

BATCHNORM_PLACEMENTS = ("none", "d", "g", "both")
"""Where batch norm goes: nowhere; D's hidden layers only (the paper's Table II); G only;
G and D (the DCGAN baseline). G gets it after every layer but the last, D after every hidden
layer (not the first, as in DCGAN, and not the output)."""


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator architecture (DCGAN family)."""

    image_size: int = 64  # square side in pixels; a power of two >= 16
    channels: int = 1  # X-rays are grayscale (Table II prints 3 for G: a misprint, see paper.md)
    latent_dim: int = 100  # size of z, fed to G as a (latent_dim, 1, 1) map
    g_features: int = 64  # base width of G; widths double per block towards the latent side
    d_features: int = 64  # base width of D; widths double per block towards the logit
    g_activation: str = "elu"  # registry name, see gan_core.models.layers
    d_activation: str = "elu"
    leaky_slope: float = 0.2  # negative slope, used when an activation is leaky_relu
    batchnorm: str = "d"  # one of BATCHNORM_PLACEMENTS
    # Strides of the up/down-sampling layers. Empty = the DCGAN geometry (stride 2 until 4x4).
    # G's first layer (1x1 -> initial size) and D's last (final size -> 1x1) are not listed:
    # their kernel equals the feature-map size they map from/to, as in DCGAN.
    g_strides: tuple[int, ...] = ()
    d_strides: tuple[int, ...] = ()
    # Kernel sizes of the same layers. Empty = solved from the paper's eq. 5 for each stride.
    g_kernels: tuple[int, ...] = ()
    d_kernels: tuple[int, ...] = ()
    padding: int = 1  # padding of the strided layers (DCGAN: 1, so stride 2 gives kernel 4)
    g_fc_layers: int = 0  # fully connected layers at G's output (paper's compression study)
    d_fc_layers: int = 0  # fully connected layers at D's input
    init_std: float = 0.02  # DCGAN init: conv weights ~ N(0, 0.02), BN weights ~ N(1, 0.02)


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer of G and D. ``None`` learning rates take the optimizer's registry default."""

    name: str = "adas"  # adam | adas | sgd (gan_core.optim registry)
    lr_g: float | None = None
    lr_d: float | None = None
    ttur: bool = False  # two time-scale update rule: see resolved_lrs()
    beta1: float | None = None  # Adam beta1 / AdaS beta_1; None = optimizer default
    beta2: float | None = None
    momentum: float = 0.0  # SGD only
    weight_decay: float = 0.0
    # AdaS levels 2 and 3 (Eliyahu's reference defaults; see gan_core/optim/adas.py)
    lr2: float = 0.005
    lr3: float = 0.0005
    beta3: float = 0.9999
    eps: float = 1e-8


TTUR_G_FACTOR = 0.5
TTUR_D_FACTOR = 2.0
"""With ``ttur`` and no explicit rates, G gets half and D twice the optimizer's default rate:
a 1:4 ratio as in Heusel et al. (for Adam's 2e-4 default: G 1e-4, D 4e-4)."""


@dataclass(frozen=True)
class DataConfig:
    """Where training images come from. ``source`` is a dataset spec, see gan_core.data."""

    source: str = "phantom"  # phantom | folder:PATH | dicom:PATH | cache:PATH
    num_images: int = 0  # at most this many images; 0 = all (for phantoms: 2048)
    seed: int = 0  # seed of the phantom generator / of subset selection


AMP_MODES = ("off", "bf16", "fp16", "auto")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: length, batch, logging, checkpoints, speed switches."""

    steps: int = 0  # iterations (one D and one G update each); 0 = use epochs
    epochs: float = 0.0  # passes over the dataset, used when steps is 0
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    loss: str = "nonsaturating"  # nonsaturating | saturating (the paper's eq. 1)
    log_every: int = 1  # rows in metrics.csv every N iterations
    sample_every: int = 500  # sample grid every N iterations (and at the end); 0 = only at the end
    checkpoint_every: int = 500  # checkpoint every N iterations (and at the end, and on stop); 0 = only then
    num_samples: int = 64  # images in a sample grid (fixed noise)
    amp: str = "off"  # off | bf16 | fp16 | auto (fp16 on CUDA, bf16 on CPU)
    channels_last: bool = False
    compile: bool = False  # torch.compile the models (pays off for long runs only)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a run; written to ``config.json`` in the run folder."""

    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        return from_dict(cls, data)

    @classmethod
    def from_json(cls, text: str) -> ExperimentConfig:
        return cls.from_dict(json.loads(text))


def read_config_file(path: str | os.PathLike, flag: str = "--config") -> ExperimentConfig:
    """An ExperimentConfig from a JSON file (e.g. RUN/config.json); errors name ``flag``."""
    try:
        return ExperimentConfig.from_json(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{flag}: {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{flag}: {path} is not valid JSON ({e})") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from a dict, recursing into nested configs.

    Unknown keys and values of the wrong type raise :class:`ConfigError` naming the field.
    Missing keys take the defaults, so configs written by older versions still load.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{path or cls.__name__}: unknown field(s) {', '.join(unknown)}; "
            f"valid fields: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, f"{path}.{key}" if path else key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], v, path) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def replace_path(cfg: Any, dotted: str, value: Any, _prefix: str = "") -> Any:
    """``replace_path(exp, "model.g_features", 32)``: a copy with one nested field changed."""
    head, _, rest = dotted.partition(".")
    if not dataclasses.is_dataclass(cfg) or not hasattr(cfg, head):
        valid = ", ".join(f.name for f in dataclasses.fields(cfg)) if dataclasses.is_dataclass(cfg) else ""
        raise ConfigError(f"unknown config field {_prefix + dotted!r}; valid here: {valid}")
    if rest:
        inner = replace_path(getattr(cfg, head), rest, value, f"{_prefix}{head}.")
        return dataclasses.replace(cfg, **{head: inner})
    return dataclasses.replace(cfg, **{head: value})


def validate_model(m: ModelConfig) -> None:
    """Check the model fields the layer planner depends on; ConfigError names the field."""
    size = m.image_size
    if size < 16 or size & (size - 1):
        raise ConfigError(f"model.image_size: expected a power of two >= 16, got {size}")
    for name in ("channels", "latent_dim", "g_features", "d_features"):
        if getattr(m, name) < 1:
            raise ConfigError(f"model.{name}: expected a positive integer, got {getattr(m, name)}")
    for name in ("g_fc_layers", "d_fc_layers", "padding"):
        if getattr(m, name) < 0:
            raise ConfigError(f"model.{name}: expected >= 0, got {getattr(m, name)}")
    if m.batchnorm not in BATCHNORM_PLACEMENTS:
        raise ConfigError(
            f"model.batchnorm: expected one of {', '.join(BATCHNORM_PLACEMENTS)}, got {m.batchnorm!r}"
        )


def validate(cfg: ExperimentConfig) -> None:
    """Check the fields that need no model build; geometry is checked by gan_core.models."""
    t, o, d = cfg.train, cfg.optim, cfg.data
    validate_model(cfg.model)
    if t.batch_size < 1:
        raise ConfigError(f"train.batch_size: expected a positive integer, got {t.batch_size}")
    if t.steps < 0 or t.epochs < 0:
        raise ConfigError("train.steps / train.epochs: expected >= 0")
    if t.steps == 0 and t.epochs == 0:
        raise ConfigError("train: give a number of steps (--steps) or epochs (--epochs)")
    if t.loss not in ("nonsaturating", "saturating"):
        raise ConfigError(f"train.loss: expected nonsaturating or saturating, got {t.loss!r}")
    if t.amp not in AMP_MODES:
        raise ConfigError(f"train.amp: expected one of {', '.join(AMP_MODES)}, got {t.amp!r}")
    for name in ("log_every", "num_samples"):
        if getattr(t, name) < 1:
            raise ConfigError(f"train.{name}: expected a positive integer, got {getattr(t, name)}")
    for name in ("sample_every", "checkpoint_every"):
        if getattr(t, name) < 0:
            raise ConfigError(f"train.{name}: expected >= 0, got {getattr(t, name)}")
    for name in ("lr_g", "lr_d"):
        lr = getattr(o, name)
        if lr is not None and not lr > 0:
            raise ConfigError(f"optim.{name}: expected a positive learning rate, got {lr}")
    if d.num_images < 0:
        raise ConfigError(f"data.num_images: expected >= 0, got {d.num_images}")
