import dataclasses
import json

import pytest

from xraygan.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    replace_path,
    validate,
)
from xraygan.errors import ConfigError
from xraygan.guard import check_training


def test_json_round_trip_keeps_every_field():
    cfg = ExperimentConfig(
        name="x",
        model=ModelConfig(image_size=128, g_strides=(4, 4, 2), g_kernels=(6, 6, 4), batchnorm="both"),
        train=TrainConfig(steps=7, amp="bf16"),
    )
    again = ExperimentConfig.from_json(cfg.to_json())
    assert again == cfg
    assert again.model.g_strides == (4, 4, 2)  # tuples survive JSON lists


def test_unknown_field_names_the_field_and_the_valid_ones():
    data = ExperimentConfig().to_dict()
    data["model"]["g_featurez"] = 3
    with pytest.raises(ConfigError, match=r"model: unknown field\(s\) g_featurez; valid fields: .*g_features"):
        ExperimentConfig.from_dict(data)


def test_wrong_type_names_the_path():
    data = ExperimentConfig().to_dict()
    data["train"]["batch_size"] = "64"
    with pytest.raises(ConfigError, match="train.batch_size: expected an integer"):
        ExperimentConfig.from_dict(data)


def test_missing_fields_take_defaults():
    cfg = ExperimentConfig.from_dict({"model": {"image_size": 32}})
    assert cfg.model.image_size == 32 and cfg.model.latent_dim == 100
    assert cfg.train == TrainConfig()


def test_replace_path():
    cfg = replace_path(ExperimentConfig(), "model.g_features", 32)
    assert cfg.model.g_features == 32 and cfg.model.d_features == 64
    with pytest.raises(ConfigError, match="unknown config field 'model.nope'"):
        replace_path(cfg, "model.nope", 1)


@pytest.mark.parametrize(
    "change, message",
    [
        (("model", "image_size", 48), "model.image_size: expected a power of two >= 16, got 48"),
        (("model", "image_size", 8), "power of two >= 16"),
        (("model", "batchnorm", "everywhere"), "model.batchnorm: expected one of none, d, g, both"),
        (("model", "latent_dim", 0), "model.latent_dim: expected a positive integer"),
        (("train", "batch_size", 0), "train.batch_size"),
        (("train", "amp", "fp8"), "train.amp"),
        (("data", "num_images", -1), "data.num_images"),
    ],
)
def test_validate_names_the_bad_field(change, message):
    section, name, value = change
    base = ExperimentConfig(train=TrainConfig(steps=1))
    cfg = dataclasses.replace(base, **{section: dataclasses.replace(getattr(base, section), **{name: value})})
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


@pytest.mark.parametrize("section, name, value", [
    ("train", "loss", "wgan"), ("model", "g_activation", "swish"), ("optim", "name", "adamw")])
def test_a_name_outside_its_registry_is_refused_before_anything_is_built(section, name, value):
    # the config holds names as data; the builders check them through their registries
    base = ExperimentConfig(train=TrainConfig(steps=1))
    cfg = dataclasses.replace(base, **{section: dataclasses.replace(getattr(base, section), **{name: value})})
    validate(cfg)
    with pytest.raises(ConfigError, match=rf"{section}.{name}: unknown \w+ '{value}'; choose one of"):
        check_training(cfg)


def test_validate_requires_a_length():
    with pytest.raises(ConfigError, match="--steps"):
        validate(ExperimentConfig(train=TrainConfig(steps=0, epochs=0)))


def test_config_is_frozen_and_json_is_sorted():
    cfg = ExperimentConfig(data=DataConfig(source="folder:/x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "y"  # type: ignore[misc]
    assert list(json.loads(cfg.to_json())) == sorted(json.loads(cfg.to_json()))


def test_read_config_file_names_the_flag_and_the_problem(tmp_path):
    from xraygan.config import read_config_file

    with pytest.raises(ConfigError, match=r"--config: .*nope.json does not exist"):
        read_config_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="--config: .*bad.json is not valid JSON"):
        read_config_file(bad)
    good = tmp_path / "good.json"
    good.write_text(ExperimentConfig(name="g").to_json())
    assert read_config_file(good).name == "g"


# ------------------------------------------------------------------ field metadata
def test_every_field_carries_its_constraints():
    from xraygan.config import SECTIONS, param_of

    for _, cls in SECTIONS:
        for f in dataclasses.fields(cls):
            p = param_of(f)
            assert p is not None and p.help, f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize(
    "section, name, value, message",
    [
        ("train", "epochs", float("nan"), "train.epochs: expected a finite number, got nan"),
        ("train", "epochs", float("inf"), "train.epochs: expected a finite number"),
        ("train", "seed", 2**64, "train.seed: expected <= 4,294,967,295"),
        ("train", "seed", -1, "train.seed: expected >= 0, got -1"),
        ("data", "seed", -1, "data.seed: expected >= 0, got -1"),
        ("model", "image_size", 2**20, "model.image_size: expected <= 4096"),
        ("model", "g_features", 10**6, "model.g_features: expected <= 4096"),
        ("model", "g_fc_layers", 10**6, "model.g_fc_layers: expected <= 16"),
        ("train", "num_samples", 10**6, "train.num_samples: expected <= 4096"),
        ("optim", "lr_g", float("nan"), "optim.lr_g: expected a finite number"),
        ("optim", "lr_d", 0.0, "optim.lr_d: expected a positive number, got 0"),
        ("optim", "eps", -1.0, "optim.eps: expected a positive number"),
        ("optim", "beta3", 1.0, r"optim.beta3: expected a value in \[0, 1\)"),
        ("optim", "weight_decay", -0.1, "optim.weight_decay: expected >= 0"),
        ("model", "g_strides", (2,) * 17, "model.g_strides: expected at most 16 values"),
        ("model", "d_kernels", (0, 4), "model.d_kernels: expected a positive integer, got 0"),
        ("data", "source", " ", "data.source: expected a non-empty string"),
        ("train", "device", "", "train.device: expected a non-empty string"),
    ],
)
def test_validate_walks_the_metadata(section, name, value, message):
    base = ExperimentConfig(train=TrainConfig(steps=1))
    cfg = dataclasses.replace(base, **{section: dataclasses.replace(getattr(base, section), **{name: value})})
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_learning_rate_rule_lives_in_one_place():
    """The optimizer factory checks learning rates through the config's metadata."""
    import torch
    from torch import nn

    from xraygan.config import OptimConfig, check_learning_rate
    from xraygan.optim import build_optimizer

    for bad in (0.0, -1.0, float("nan"), 11.0):
        with pytest.raises(ConfigError, match="optim.lr_g"):
            check_learning_rate("optim.lr_g", bad)
        with pytest.raises(ConfigError, match="lr"):
            build_optimizer([nn.Parameter(torch.zeros(2))], OptimConfig(name="adam"), bad)
    check_learning_rate("optim.lr_g", None)  # None: the optimizer's default


def test_a_new_field_is_validated_by_declaring_it():
    from dataclasses import dataclass

    from xraygan.config import check_section, param

    @dataclass(frozen=True)
    class Extra:
        rate: float = param(0.5, help="a rate", min=0.0, max=1.0)

    check_section(Extra(), "extra")
    with pytest.raises(ConfigError, match="extra.rate: expected <= 1"):
        check_section(Extra(rate=2.0), "extra")


def test_json_config_rejects_nan_and_huge_numbers(tmp_path):
    from xraygan.config import read_config_file

    f = tmp_path / "c.json"
    f.write_text('{"train": {"epochs": NaN}}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_config_file(f)
    f.write_text('{"train": {"epochs": 1e999}}')
    with pytest.raises(ConfigError, match="train.epochs: expected a finite number"):
        validate(read_config_file(f))
    f.write_text('{"train": {"epochs": ' + "9" * 400 + "}}")
    with pytest.raises(ConfigError, match="train.epochs: expected a finite number, got an integer of 400 digits"):
        read_config_file(f)
