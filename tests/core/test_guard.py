"""The resource guard (gan_core/guard.py): estimates from shapes, one-line refusals before any
allocation, and the NaN/inf check over parameters and buffers."""

import dataclasses

import pytest
import torch

from xraygan import budget, guard
from xraygan.cli import main
from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.errors import ResourceError
from xraygan.memory.estimate import estimate_step
from xraygan.models import build_models, count_parameters
from xraygan.presets import PRESETS, get_preset
from xraygan.sampling import generate_from_noise


def cfg_of(**model) -> ExperimentConfig:
    return ExperimentConfig(
        model=ModelConfig(**{"image_size": 16, "g_features": 8, "d_features": 8,
                             "latent_dim": 16, **model}),
        data=DataConfig(source="phantom", num_images=32),
        train=TrainConfig(steps=1, batch_size=8, device="cpu"),
    )


def test_parse_and_format_bytes():
    assert budget.parse_bytes("8GiB") == 8 * 2**30
    assert budget.parse_bytes("512 MB") == 512 * 10**6
    assert budget.parse_bytes("1.5k") == 1500
    assert budget.parse_bytes("123") == 123
    for off in ("off", "none", "0"):
        assert budget.parse_bytes(off) is None
    with pytest.raises(ResourceError, match="XRAYGAN_MEMORY_CAP: expected a size"):
        budget.parse_bytes("lots")
    assert budget.format_bytes(1536) == "1.5 KiB"
    assert budget.format_bytes(3 * 2**30) == "3.0 GiB"
    assert budget.format_bytes(10**30).endswith("bytes") and "e+" in budget.format_bytes(10**30)


@pytest.mark.parametrize("preset", PRESETS.names())
@pytest.mark.parametrize("optimizer", ["adas", "adam", "sgd"])
def test_shape_estimate_matches_the_forward_pass_estimate(preset, optimizer):
    """Parameters and optimizer state exactly, activations within 5% of
    xraygan.memory.estimate (which counts saved tensors on a real forward)."""
    m = dataclasses.replace(get_preset(preset, 16), g_features=8, d_features=8)
    o = OptimConfig(name=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0)
    G, D = build_models(m)
    real = estimate_step(G, D, m, o, 8)
    mine = guard.estimate_model(m, o, 8)
    assert mine["grads"] == 4 * (count_parameters(G) + count_parameters(D))
    assert mine["params"] == real.params and mine["optimizer_state"] == real.optimizer_state
    assert mine["batch"] == real.batch and mine["workspace"] == real.workspace
    assert mine["activations"] == pytest.approx(real.activations, rel=0.05)


def test_check_allocation_message_and_cap(monkeypatch):
    monkeypatch.setenv(budget.MEMORY_CAP_ENV, "1MiB")
    budget.check_allocation(2**20, "a small buffer", "--x")  # exactly the cap: fine
    with pytest.raises(ResourceError) as e:
        budget.check_allocation(3 * 2**20, "decoding a 20000x20000 frame", "--max-pixels")
    msg = str(e.value)
    assert "decoding a 20000x20000 frame would allocate 3.0 MiB" in msg
    assert "XRAYGAN_MEMORY_CAP=1MiB allows 1.0 MiB" in msg and "lower --max-pixels" in msg
    assert "\n" not in msg
    monkeypatch.setenv(budget.MEMORY_CAP_ENV, "off")
    budget.check_allocation(10**30, "anything", "--x")


def test_default_budget_is_a_fraction_of_what_is_available(monkeypatch):
    monkeypatch.delenv(budget.MEMORY_CAP_ENV, raising=False)
    avail, source = budget.available_memory("cpu")
    assert avail is not None and avail > 0 and source
    got = budget.memory_budget("cpu")
    assert got.limit == int(avail * budget.DEFAULT_FRACTION) and not got.capped
    with pytest.raises(ResourceError, match=r"available \(.*\), of which 80%"):
        budget.check_allocation(avail + 1, "more than the machine has", "--x")


@pytest.mark.parametrize(
    "change, flag",
    [
        (dict(model=dict(image_size=4096)), "--image-size"),
        (dict(model=dict(g_features=4096, d_features=4096)), "--features"),
        (dict(model=dict(g_fc_layers=16, image_size=256)), "--g-fc"),
        (dict(train=dict(batch_size=65536), model=dict(image_size=256)), "--batch-size"),
        (dict(data=dict(num_images=10**7), model=dict(image_size=128)), "--num-images"),
    ],
)
def test_memory_bombs_are_refused_from_shapes(monkeypatch, change, flag):
    monkeypatch.setenv(budget.MEMORY_CAP_ENV, "16GiB")
    base = cfg_of()
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, **change.get("model", {})),
        train=dataclasses.replace(base.train, **change.get("train", {})),
        data=dataclasses.replace(base.data, **change.get("data", {})),
    )
    with pytest.raises(ResourceError) as e:
        guard.check_training(cfg)
    assert "training would allocate" in str(e.value) and flag in str(e.value)


def test_a_small_run_passes_and_counts_the_phantom_set(monkeypatch):
    monkeypatch.setenv(budget.MEMORY_CAP_ENV, "16GiB")
    est = guard.check_training(cfg_of())
    assert est.dataset == 32 * 16 * 16  # uint8
    assert est.samples == 64 * (4 * 16 + 2 * 256)
    assert 0 < est.total < 2**30
    assert guard.check_training(cfg_of(), include_data=False).dataset == 0


def test_cli_train_memory_bomb_is_one_line_and_creates_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(budget.MEMORY_CAP_ENV, "8GiB")
    code = main(["train", "--steps", "1", "--image-size", "4096", "--out", str(tmp_path / "runs"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "would allocate" in err and "XRAYGAN_MEMORY_CAP=8GiB" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cli_presets_and_memory_bombs(capsys, monkeypatch):
    monkeypatch.setenv(budget.MEMORY_CAP_ENV, "4GiB")
    assert main(["presets", "paper-elu", "--image-size", "4096"]) == 2
    err = capsys.readouterr().err
    assert "building paper-elu at 4096x4096 would allocate" in err and "--image-size" in err
    assert main(["memory", "--batch-size", "65536", "--image-sizes", "256", "--no-measure"]) == 2
    err = capsys.readouterr().err
    assert "would allocate" in err and "lower --batch-size" in err and "Traceback" not in err


def test_first_nonfinite_names_the_tensor():
    G, D = build_models(cfg_of(batchnorm="both").model)

    def named():
        return [(f"D.{n}", t) for n, t in [*D.named_parameters(), *D.named_buffers()]]

    assert guard.first_nonfinite(named()) is None
    bn = next(n for n, _ in D.named_buffers() if n.endswith("running_var"))
    D.get_buffer(bn)[0] = float("inf")
    assert guard.first_nonfinite(named()) == f"D.{bn}"
    D.get_buffer(bn)[0] = 1.0
    p = next(n for n, _ in D.named_parameters())
    D.get_parameter(p).data[0] = float("nan")
    assert guard.first_nonfinite(named()) == f"D.{p}"


def test_sample_grids_are_generated_in_batches_with_the_same_pixels():
    G, _ = build_models(cfg_of(batchnorm="both").model)
    G.eval()
    seen = []
    G.register_forward_hook(lambda m, i, o: seen.append(len(i[0])))
    z = torch.randn(70, 16, generator=torch.Generator().manual_seed(0))
    batched = generate_from_noise(G, z, batch_size=32)
    assert seen == [32, 32, 6] and batched.shape == (70, 1, 16, 16)
    with torch.no_grad():
        whole = G(z).float()
    torch.testing.assert_close(batched, whole, atol=1e-5, rtol=0)
