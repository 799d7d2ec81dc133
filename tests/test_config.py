import dataclasses
import json

import pytest

from gan_core.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    replace_path,
    validate,
)
from gan_core.errors import ConfigError


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
        (("train", "loss", "wgan"), "train.loss"),
        (("data", "num_images", -1), "data.num_images"),
    ],
)
def test_validate_names_the_bad_field(change, message):
    section, name, value = change
    base = ExperimentConfig(train=TrainConfig(steps=1))
    cfg = dataclasses.replace(base, **{section: dataclasses.replace(getattr(base, section), **{name: value})})
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_validate_requires_a_length():
    with pytest.raises(ConfigError, match="--steps"):
        validate(ExperimentConfig(train=TrainConfig(steps=0, epochs=0)))


def test_config_is_frozen_and_json_is_sorted():
    cfg = ExperimentConfig(data=DataConfig(source="folder:/x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "y"  # type: ignore[misc]
    assert list(json.loads(cfg.to_json())) == sorted(json.loads(cfg.to_json()))


def test_read_config_file_names_the_flag_and_the_problem(tmp_path):
    from gan_core.config import read_config_file

    with pytest.raises(ConfigError, match=r"--config: .*nope.json does not exist"):
        read_config_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="--config: .*bad.json is not valid JSON"):
        read_config_file(bad)
    good = tmp_path / "good.json"
    good.write_text(ExperimentConfig(name="g").to_json())
    assert read_config_file(good).name == "g"
