"""Frozen configs: one dataclass per concern, composed into an :class:`ExperimentConfig`.

Variants are made with :func:`dataclasses.replace`; the resolved config is written to the run
folder as JSON before step 0 and stored in every checkpoint, so a run can always be rebuilt
from its folder. ``from_dict`` rejects unknown keys with the valid list, so a stale or
hand-edited config fails loudly instead of silently training something else.

Every field is declared with :func:`param`: its default, help text and constraints (range,
finiteness, choices, power of two, CLI flag) live in the field's metadata, once. ``validate``
walks that metadata, and the CLI (xraygan.cli.train) generates its flags and their help from
it, so a new field is checked and reachable from the command line by declaring it. A name picked
from a builders' registry (``Param.registry``: activation, optimizer, loss) is checked by the
builder, through its registry (xraygan.guard.check_names): the config imports no builder.
The upper bounds are sanity limits (nothing sensible needs more; integers stay inside int64
and seeds inside what every RNG we use accepts); whether a config fits the machine is the
resource guard's job, not this file's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .documents import parse_document
from .errors import ConfigError
from .registry import Registry
from .safeio import read_bounded

BATCHNORM_PLACEMENTS = ("none", "d", "g", "both")
"""Where batch norm goes: nowhere; D's hidden layers only (the paper's Table II); G only;
G and D (the DCGAN baseline). G gets it after every layer but the last, D after every hidden
layer (not the first, as in DCGAN, and not the output)."""

AMP_MODES = ("off", "bf16", "fp16", "auto")

SEED_MAX = 2**32 - 1
"""Largest seed: numpy's legacy and phantom RNGs take 0..2**32-1, torch's up to 2**64-1; the
training loop derives per-epoch seeds as ``seed * 1_000_003 + epoch``, which stays in int64."""
COUNT_MAX = 10**9  # steps, logging intervals: far beyond any run, far inside int64


@dataclass(frozen=True)
class Param:
    """Constraints and CLI face of one config field (stored in the field's metadata)."""

    help: str
    min: float | None = None  # inclusive bounds
    max: float | None = None
    gt: float | None = None  # exclusive bounds
    lt: float | None = None
    finite: bool = True  # floats: NaN and +-inf rejected
    pow2: bool = False  # integers: a power of two (image sizes)
    choices: tuple[str, ...] | None = None
    # names from a builders' registry of this kind (activation, optimizer, loss): checked where
    # the part is built (xraygan.guard.check_names), so the config needs none of the builders
    registry: str | None = None
    max_len: int | None = None  # tuples: at most this many elements
    nonempty: bool = False  # strings
    flag: str | None = ""  # "" = --field-name; None = no CLI flag (set elsewhere)
    metavar: str | None = None

    def choice_names(self) -> tuple[str, ...] | None:
        """The valid names: ``choices``, or those of the registry once its builder is imported
        (the command line imports them all)."""
        if self.registry is not None:
            found = Registry.of(self.registry)
            return None if found is None else tuple(found.names())
        return self.choices


PARAM_KEY = "xraygan"


def param(default: Any = dataclasses.MISSING, *, help: str, **constraints: Any) -> Any:
    """A dataclass field whose constraints and help text travel in its metadata."""
    return field(default=default, metadata={PARAM_KEY: Param(help=help, **constraints)})


def param_of(f: dataclasses.Field) -> Param | None:
    return f.metadata.get(PARAM_KEY)


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator architecture (DCGAN family)."""

    image_size: int = param(64, help="square image side in pixels, a power of two >= 16",
                            min=16, max=4096, pow2=True)
    # X-rays are grayscale (Table II prints 3 for G: a misprint, see paper.md)
    channels: int = param(1, help="image channels (1: grayscale X-rays)", min=1, max=4)
    latent_dim: int = param(100, help="size of z, fed to G as a (latent_dim, 1, 1) map",
                            min=1, max=16384)
    g_features: int = param(64, help="base width of G; widths double per block towards the "
                            "latent side", min=1, max=4096)
    d_features: int = param(64, help="base width of D; widths double per block towards the "
                            "logit", min=1, max=4096)
    g_activation: str = param("elu", help="activation of G", registry="activation",
                              metavar="NAME")
    d_activation: str = param("elu", help="activation of D", registry="activation",
                              metavar="NAME")
    leaky_slope: float = param(0.2, help="negative slope of leaky_relu", min=0.0, lt=1.0)
    batchnorm: str = param("d", help="batch norm: none | d (D's hidden layers: the paper) | "
                           "g | both (DCGAN)", choices=BATCHNORM_PLACEMENTS)
    # Strides of the up/down-sampling layers. Empty = the DCGAN geometry (stride 2 until 4x4).
    # G's first layer (1x1 -> initial size) and D's last (final size -> 1x1) are not listed:
    # their kernel equals the feature-map size they map from/to, as in DCGAN.
    g_strides: tuple[int, ...] = param((), help="strides of G's upsampling layers, e.g. 4,4 "
                                       "(empty: stride 2 down to 4x4)", min=1, max=64, max_len=16,
                                       metavar="S,S,...")
    d_strides: tuple[int, ...] = param((), help="strides of D's downsampling layers",
                                       min=1, max=64, max_len=16, metavar="S,S,...")
    # Kernel sizes of the same layers. Empty = solved from the paper's eq. 5 for each stride.
    g_kernels: tuple[int, ...] = param((), help="kernels of G's strided layers (empty: solved "
                                       "from eq. 5)", min=1, max=256, max_len=16, metavar="K,K,...")
    d_kernels: tuple[int, ...] = param((), help="kernels of D's strided layers (empty: solved "
                                       "from eq. 5)", min=1, max=256, max_len=16, metavar="K,K,...")
    padding: int = param(1, help="padding of the strided layers (DCGAN: 1)", min=0, max=64)
    g_fc_layers: int = param(0, help="fully connected layers at G's output (compression study)",
                             min=0, max=16, flag="--g-fc")
    d_fc_layers: int = param(0, help="fully connected layers at D's input", min=0, max=16,
                             flag="--d-fc")
    init_std: float = param(0.02, help="init std: conv weights ~ N(0, s), BN weights ~ N(1, s)",
                            gt=0.0, max=1.0)


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer of G and D. ``None`` learning rates take the optimizer's registry default."""

    name: str = param("adas", help="optimizer", registry="optimizer", flag="--optimizer")
    lr_g: float | None = param(None, help="learning rate of G (default: the optimizer's)",
                               gt=0.0, max=10.0)
    lr_d: float | None = param(None, help="learning rate of D (default: the optimizer's)",
                               gt=0.0, max=10.0)
    ttur: bool = param(False, help="two time-scale update rule: G at 0.5x, D at 2x the "
                       "optimizer's default rate")
    beta1: float | None = param(None, help="Adam beta1 / AdaS beta_1 (default: the optimizer's)",
                                min=0.0, lt=1.0)
    beta2: float | None = param(None, help="Adam beta2 / AdaS beta_2 (default: the optimizer's)",
                                min=0.0, lt=1.0)
    momentum: float = param(0.0, help="SGD momentum (sgd only)", min=0.0, lt=1.0)
    weight_decay: float = param(0.0, help="L2 weight decay", min=0.0, max=1.0)
    # AdaS levels 2 and 3 (Eliyahu's reference defaults; see gan_core/optim/adas.py)
    lr2: float = param(0.005, help="AdaS: initial learning rate of the learning rates",
                       min=0.0, max=10.0)
    lr3: float = param(0.0005, help="AdaS: fixed third-level learning rate", min=0.0, max=10.0)
    beta3: float = param(0.9999, help="AdaS: decay of the level-1 moments", min=0.0, lt=1.0)
    eps: float = param(1e-8, help="Adam / AdaS epsilon", gt=0.0, max=1.0)


TTUR_G_FACTOR = 0.5
TTUR_D_FACTOR = 2.0
"""With ``ttur`` and no explicit rates, G gets half and D twice the optimizer's default rate:
a 1:4 ratio as in Heusel et al. (for Adam's 2e-4 default: G 1e-4, D 4e-4)."""


@dataclass(frozen=True)
class DataConfig:
    """Where training images come from. ``source`` is a dataset spec, see xraygan.data."""

    source: str = param("phantom", help="dataset: phantom | phantom:v2 (phantoms with findings) "
                        "| folder:PATH | dicom:PATH | cache:PATH", nonempty=True, flag="--data",
                        metavar="SPEC")
    num_images: int = param(0, help="at most this many images; 0 = all (phantoms: 2048)",
                            min=0, max=10**7)
    seed: int = param(0, help="seed of the phantom generator / of subset selection",
                      min=0, max=SEED_MAX, flag="--data-seed")
    holdout: float = param(0.0, help="fraction of a folder/DICOM dataset held out from training "
                           "(seeded by --data-seed) for the memorization test; phantoms hold "
                           "out the images after --num-images by themselves", min=0.0, max=0.5,
                           metavar="F")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: length, batch, logging, checkpoints, speed switches."""

    steps: int = param(0, help="iterations (one D and one G update each); 0 = use --epochs",
                       min=0, max=COUNT_MAX)
    epochs: float = param(0.0, help="passes over the dataset, used when --steps is 0",
                          min=0.0, max=1e6)
    batch_size: int = param(64, help="images per step", min=1, max=65536)
    seed: int = param(0, help="training seed (weights, batch order, sample noise)",
                      min=0, max=SEED_MAX)
    device: str = param("auto", help="auto (CUDA when present) | cpu | cuda | cuda:N",
                        nonempty=True, metavar="DEVICE")
    loss: str = param("nonsaturating", help="GAN loss (saturating: the paper's eq. 1)",
                      registry="loss")
    log_every: int = param(1, help="a row in metrics.csv every N iterations", min=1,
                           max=COUNT_MAX)
    sample_every: int = param(500, help="sample grid every N iterations and at the end; "
                              "0 = only at the end", min=0, max=COUNT_MAX)
    checkpoint_every: int = param(500, help="checkpoint every N iterations, at the end and on "
                                  "stop; 0 = only then", min=0, max=COUNT_MAX)
    num_samples: int = param(64, help="images in a sample grid (fixed noise)", min=1, max=4096)
    amp: str = param("off", help="autocast precision (auto: fp16 on CUDA, bf16 on a CPU "
                     "with native bf16, else fp32)",
                     choices=AMP_MODES)
    channels_last: bool = param(False, help="channels-last memory format")
    compile: bool = param(False, help="torch.compile the models (pays off for long runs only)")


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
        return cls.from_dict(parse_config_text(text, ".json", "config"))


CONFIG_SUFFIXES = (".json", ".toml", ".yaml", ".yml")


def parse_config_text(text: str, suffix: str, where: str) -> Any:
    """The object in a JSON / TOML / YAML config text (by ``suffix``); ConfigError otherwise.

    Strict (xraygan.documents): JSON without NaN/Infinity, YAML without objects, no duplicate
    keys, non-string keys or alias bombs, depth and size bounded.
    """
    return parse_document(text, suffix, where)


def read_config_file(path: str | os.PathLike, flag: str = "--config") -> ExperimentConfig:
    """An ExperimentConfig from a JSON, TOML or YAML file (by suffix; anything else is read as
    JSON, e.g. RUN/config.json); every field checked as ``from_dict`` does. Errors name ``flag``."""
    path = Path(path)
    where = f"{flag}: {path}"
    if path.suffix.lower() not in CONFIG_SUFFIXES and path.suffix:
        raise ConfigError(f"{where}: expected a {', '.join(CONFIG_SUFFIXES)} file")
    raw = read_bounded(path, "config_bytes", where)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    data = parse_config_text(text, path.suffix or ".json", where)
    try:
        return ExperimentConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


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


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages stay one line, and a huge
    value (a list of a million items) is never rendered whole to be cut."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 14_000:  # past Python's 4300-digit str() limit
            return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
        text = repr(value)
        if len(text) > limit:
            return f"an integer of {len(text.lstrip('-'))} digits"
    else:
        r = reprlib.Repr()
        r.maxlevel, r.maxlist, r.maxdict, r.maxtuple, r.maxset = 2, 4, 4, 4, 4
        r.maxstring = r.maxother = limit
        text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
            raise ConfigError(f"{path}: expected a list, got {_short(value)}")
        return tuple(_coerce(args[0], v, path) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_short(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_short(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_short(value)}")
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{path}: expected a finite number, got {_short(value)}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_short(value)}")
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


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else f"{x:,}" if abs(x) >= 10**5 else str(x)


def check_value(p: Param, value: Any, path: str) -> None:
    """Raise ConfigError naming ``path`` when ``value`` breaks ``p``'s constraints."""
    if value is None:
        return  # Optional fields: None means "the default of something else"
    if isinstance(value, tuple):
        if p.max_len is not None and len(value) > p.max_len:
            raise ConfigError(f"{path}: expected at most {p.max_len} values, got {len(value)}")
        for v in value:
            check_value(dataclasses.replace(p, max_len=None), v, path)
        return
    if isinstance(value, str):
        if p.nonempty and not value.strip():
            raise ConfigError(f"{path}: expected a non-empty string")
        names = p.choices  # a registry's names are its builder's to check (Param.registry)
        if names is not None and value not in names:
            raise ConfigError(f"{path}: expected one of {', '.join(names)}, got {_short(value)}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # types are from_dict's business
    got = f", got {_short(value) if isinstance(value, int) else _fmt(value)}"
    if isinstance(value, float) and p.finite and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number{got}")
    if p.pow2 and (value < (p.min or 1) or int(value) & (int(value) - 1)):
        raise ConfigError(f"{path}: expected a power of two >= {_fmt(p.min or 1)}{got}")
    if p.min is not None and p.lt is not None and not p.min <= value < p.lt:
        raise ConfigError(f"{path}: expected a value in [{_fmt(p.min)}, {_fmt(p.lt)}){got}")
    if p.min is not None and value < p.min:
        if isinstance(value, int) and p.min == 1:
            raise ConfigError(f"{path}: expected a positive integer{got}")
        raise ConfigError(f"{path}: expected >= {_fmt(p.min)}{got}")
    if p.gt is not None and not value > p.gt:
        what = "a positive number" if p.gt == 0 else f"> {_fmt(p.gt)}"
        raise ConfigError(f"{path}: expected {what}{got}")
    if p.max is not None and value > p.max:
        raise ConfigError(f"{path}: expected <= {_fmt(p.max)} (a sanity limit){got}")
    if p.lt is not None and not value < p.lt:
        raise ConfigError(f"{path}: expected < {_fmt(p.lt)}{got}")


def check_section(section: Any, prefix: str) -> None:
    """Check every field of one config dataclass against its metadata (no cross-field rules)."""
    for f in dataclasses.fields(section):
        p = param_of(f)
        if p is not None:
            check_value(p, getattr(section, f.name), f"{prefix}.{f.name}")


def field_param(cls: type, name: str) -> Param:
    """The :class:`Param` of ``cls.name`` (KeyError for a field without one)."""
    for f in dataclasses.fields(cls):
        if f.name == name and param_of(f) is not None:
            return param_of(f)
    raise KeyError(f"{cls.__name__}.{name}")


def check_learning_rate(path: str, lr: Any) -> None:
    """The one definition of a valid learning rate (config fields and explicit arguments)."""
    if lr is None:
        return
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise ConfigError(f"{path}: expected a finite learning rate > 0, got {_short(lr)}")
    check_value(field_param(OptimConfig, "lr_g"), float(lr), path)


SECTIONS = (("model", ModelConfig), ("optim", OptimConfig), ("data", DataConfig),
            ("train", TrainConfig))


def validate_model(m: ModelConfig) -> None:
    """Check the model fields the layer planner depends on; ConfigError names the field."""
    for name in ("image_size", "channels", "latent_dim", "g_features", "d_features",
                 "g_fc_layers", "d_fc_layers", "padding", "batchnorm"):
        # strides and kernels: the planner names the layer at fault, validate() the bounds
        check_value(field_param(ModelConfig, name), getattr(m, name), f"model.{name}")


def validate(cfg: ExperimentConfig) -> None:
    """Every field against its metadata, then the cross-field rules; geometry is checked by
    xraygan.models."""
    name = cfg.name
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or any(
            c in name for c in "/\\\0") or len(name) > 200:
        raise ConfigError(f"name: expected a run name without path separators (at most 200 "
                          f"characters), got {_short(name)}")
    for prefix, _ in SECTIONS:
        check_section(getattr(cfg, prefix), prefix)
    t = cfg.train
    if t.steps == 0 and t.epochs == 0:
        raise ConfigError("train: give a number of steps (--steps) or epochs (--epochs)")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``section.field`` -> value (``{"model": {"image_size": 64}}``
    -> ``{"model.image_size": 64}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
