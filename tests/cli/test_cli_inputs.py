"""Bad input at the command line: one line, exit 2, never a traceback; files and folders
checked for their kind at parse time; TOML / YAML / JSON configs through one strict reader;
OSErrors a user can fix mapped to exit 2; sweep exit codes and --seeds."""

import errno
import json

import pytest

from xraygan.cli import main
from xraygan.config import ExperimentConfig, read_config_file
from xraygan.errors import ConfigError, DiskFullError, UserFileError, XrayganError, from_os_error

TINY = ["--image-size", "16", "--features", "4", "--latent-dim", "8", "--num-images", "8",
        "--batch-size", "4", "--steps", "1", "--device", "cpu", "--no-progress", "--no-eval"]


def run_cli(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "nan"], "argument --epochs: train.epochs: expected a finite number, got 'nan'"),
        (["--epochs", "inf"], "expected a finite number"),
        (["--seed", "18446744073709551616"], "argument --seed: train.seed: expected <= 4,294,967,295"),
        (["--data-seed", "-1"], "argument --data-seed: data.seed: expected >= 0, got -1"),
        (["--steps", "-1"], "argument --steps: train.steps: expected >= 0, got -1"),
        (["--image-size", "1048576"], "model.image_size: expected <= 4096"),
        (["--features", "1000000"], "argument --features: model.g_features: expected <= 4096"),
        (["--g-fc", "1000000"], "model.g_fc_layers: expected <= 16"),
        (["--num-samples", "1000000"], "train.num_samples: expected <= 4096"),
        (["--batch-size", "0"], "train.batch_size: expected a positive integer, got 0"),
        (["--lr", "-1"], "argument --lr: optim.lr_g: expected a positive number"),
        (["--beta1", "1.5"], "optim.beta1: expected a value in [0, 1)"),
        (["--eps", "0"], "optim.eps: expected a positive number"),
        (["--weight-decay", "nan"], "expected a finite number"),
        (["--g-strides", "2,x"], "expected an integer, got 'x'"),
        (["--g-strides", "0,2"], "model.g_strides: expected a positive integer, got 0"),
        (["--steps", "1e3"], "expected an integer, got '1e3'"),
        (["--steps", "9" * 200], "expected an integer"),
        (["--optimizer", "adamw"], "optim.name: expected one of adam, adas, sgd, got 'adamw'"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--batchnorm", "all"], "model.batchnorm: expected one of none, d, g, both"),
    ],
)
def test_bad_train_flags_are_one_line_exit_2(capsys, tmp_path, flags, message):
    code, _, err = run_cli(capsys, ["train", "--out", str(tmp_path / "runs"), "--dry-run", *flags])
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one line, no usage block
    assert not (tmp_path / "runs").exists()


def test_out_naming_a_file_config_naming_a_folder_json_naming_a_folder(capsys, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    code, _, err = run_cli(capsys, ["train", "--out", str(f), *TINY])
    assert code == 2 and "is a file; --out names a folder" in err
    code, _, err = run_cli(capsys, ["train", "--out", str(f / "sub"), *TINY])
    assert code == 2 and "is a file, so the folder cannot be created" in err
    code, _, err = run_cli(capsys, ["train", "--config", str(tmp_path), *TINY])
    assert code == 2 and "is a folder; expected a file" in err
    code, _, err = run_cli(capsys, ["train", "--config", str(tmp_path / "nope.json"), *TINY])
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(capsys, ["metrics", str(tmp_path), "--json", str(tmp_path)])
    assert code == 2 and "is a folder; expected a file path" in err
    code, _, err = run_cli(capsys, ["metrics", str(tmp_path), "--json", str(tmp_path / "no" / "x.json")])
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(capsys, ["memory", "--json", str(tmp_path), "--no-measure"])
    assert code == 2 and "is a folder" in err
    code, _, err = run_cli(capsys, ["data", "preview", "phantom", "--png", str(tmp_path)])
    assert code == 2 and "is a folder" in err
    code, _, err = run_cli(capsys, ["report", "--memory", str(tmp_path)])
    assert code == 2 and "is a folder; expected a file" in err
    code, _, err = run_cli(capsys, ["train", "--resume", str(f)])
    assert code == 2 and "expected a folder" in err


@pytest.mark.parametrize("argv, message", [
    (["presets", "--image-size", "1048576"], "expected <= 4096"),
    (["presets", "--image-size", "48"], "power of two"),
    (["memory", "--batch-size", "1000000000", "--no-measure"], "train.batch_size: expected <= 65536"),
    (["memory", "--image-size", "16", "nan", "--no-measure"], "expected an integer"),
    (["sweep", "table1", "--steps", "-1", "--dry-run"], "argument --steps: expected a positive integer"),
    (["sweep", "table1", "--grace", "-1", "--dry-run"], "argument --grace"),
    (["sweep", "table1", "--seeds", "0", "--dry-run"], "argument --seeds"),
    (["sweep", "table1", "--epochs", "nan", "--dry-run"], "expected a finite number"),
    (["metrics", ".", "--fid-samples", "0"], "argument --fid-samples"),
])
def test_bad_flags_of_other_subcommands(capsys, argv, message):
    code, _, err = run_cli(capsys, argv)
    assert code == 2 and message in err


# ------------------------------------------------------------------ config files
TOML = """
name = "from-toml"
[model]
image_size = 16
g_features = 4
d_features = 4
latent_dim = 8
[train]
steps = 2
batch_size = 4
device = "cpu"
[data]
num_images = 8
"""

YAML = """
name: from-yaml
model: {image_size: 16, g_features: 4, d_features: 4, latent_dim: 8}
train: {steps: 2, batch_size: 4, device: cpu}
optim: {name: adam, lr_g: 0.001}
"""


def test_toml_yaml_and_json_configs_read_the_same_way(tmp_path):
    t = tmp_path / "run.toml"
    t.write_text(TOML)
    cfg = read_config_file(t)
    assert cfg.name == "from-toml" and cfg.model.image_size == 16 and cfg.train.steps == 2
    y = tmp_path / "run.yaml"
    y.write_text(YAML)
    cfg = read_config_file(y)
    assert cfg.optim.name == "adam" and cfg.optim.lr_g == 0.001 and cfg.model.latent_dim == 8
    j = tmp_path / "run.json"
    j.write_text(cfg.to_json())
    assert read_config_file(j) == cfg


@pytest.mark.parametrize("suffix, text, message", [
    (".toml", "[model]\nimage_sise = 16\n", r"model: unknown field\(s\) image_sise"),
    (".toml", "[model\n", "is not valid TOML"),
    (".yaml", "model: [1, 2\n", "is not valid YAML"),
    (".yaml", "!!python/object:os.system {}\n", "is not valid YAML"),  # safe_load only
    (".yaml", "- 1\n- 2\n", "expected an object, got list"),
    (".json", '{"train": {"epochs": NaN}}', "is not valid JSON"),
    (".json", '{"train": {"epochs": 1e999}}', "train.epochs"),
    (".json", '{"train": {"seed": 1' + "0" * 40 + "}}", "train.seed"),
    (".json", '{"model": {"image_size": "64"}}', "model.image_size: expected an integer"),
    (".txt", "{}", "expected a .json, .toml, .yaml, .yml file"),
])
def test_bad_config_files_name_the_file_and_the_problem(tmp_path, suffix, text, message):
    import dataclasses

    from xraygan.config import validate

    f = tmp_path / f"cfg{suffix}"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        cfg = read_config_file(f)
        validate(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=1)))


def test_non_utf8_config_is_a_config_error(tmp_path):
    f = tmp_path / "cfg.json"
    f.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config_file(f)


def test_train_dry_run_from_a_toml_config(capsys, tmp_path):
    t = tmp_path / "run.toml"
    t.write_text(TOML)
    code, out, _ = run_cli(capsys, ["train", "--config", str(t), "--lr2", "0.01", "--dry-run"])
    assert code == 0
    cfg = ExperimentConfig.from_json(out.split("\n# G:")[0])
    assert cfg.name == "from-toml" and cfg.optim.lr2 == 0.01 and cfg.model.g_features == 4


def test_new_flags_reach_the_config(capsys, tmp_path):
    code, out, _ = run_cli(capsys, ["train", *TINY, "--weight-decay", "0.01", "--lr3", "0.001",
                                    "--beta3", "0.99", "--eps", "1e-6", "--init-std", "0.05",
                                    "--no-ttur", "--out", str(tmp_path), "--dry-run"])
    assert code == 0
    cfg = ExperimentConfig.from_json(out.split("\n# G:")[0])
    o = cfg.optim
    assert (o.weight_decay, o.lr3, o.beta3, o.eps) == (0.01, 0.001, 0.99, 1e-6)
    assert cfg.model.init_std == 0.05 and cfg.optim.ttur is False


def test_run_name_cannot_escape_the_runs_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, ["train", *TINY, "--name", "../x", "--out", str(tmp_path)])
    assert code == 2 and "name: expected a run name without path separators" in err


# ------------------------------------------------------------------ OSError mapping
def test_os_errors_a_user_can_fix_are_user_errors():
    full = from_os_error(OSError(errno.ENOSPC, "No space left on device", "/runs/x/metrics.csv"))
    assert isinstance(full, DiskFullError) and full.exit_code == 2
    assert str(full).startswith("disk full while writing /runs/x/metrics.csv")
    quota = from_os_error(OSError(errno.EDQUOT, "Disk quota exceeded", "/q"))
    assert "disk quota exceeded while writing /q" in str(quota)
    perm = from_os_error(PermissionError(errno.EACCES, "Permission denied", "/etc/x"))
    assert isinstance(perm, UserFileError) and str(perm) == "/etc/x: permission denied"
    assert from_os_error(OSError(errno.EIO, "I/O error")) is None  # a real fault keeps its traceback


def test_main_maps_disk_full_to_one_line_exit_2(capsys, monkeypatch):
    import xraygan.cli.presets as presets_cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/r/checkpoint.pt")

    monkeypatch.setattr(presets_cli, "run", full)
    code, _, err = run_cli(capsys, ["presets"])
    assert code == 2
    assert err.strip() == ("xraygan presets: error: disk full while writing "
                           "/runs/r/checkpoint.pt; free some space and run again")


def test_main_prints_user_errors_on_one_line(capsys, monkeypatch):
    import xraygan.cli.presets as presets_cli

    def bad(args):
        raise XrayganError("first line\nsecond line")

    monkeypatch.setattr(presets_cli, "run", bad)
    code, _, err = run_cli(capsys, ["presets"])
    assert code == 2 and err == "xraygan presets: error: first line second line\n"


# ------------------------------------------------------------------ sweep
def test_sweep_seeds_1_is_one_seed_and_default_is_five(capsys, tmp_path):
    code, out, _ = run_cli(capsys, ["sweep", "seeds", "--seeds", "1", "--dry-run", "--no-estimate", "--out", str(tmp_path)])
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()[2:]] == ["seed0"]
    code, out, _ = run_cli(capsys, ["sweep", "seeds", "--dry-run", "--no-estimate", "--out", str(tmp_path)])
    assert code == 0 and len(out.splitlines()[2:]) == 5
    code, out, _ = run_cli(capsys, ["sweep", "table1", "--dry-run", "--no-estimate", "--out", str(tmp_path)])
    assert code == 0 and len(out.splitlines()[2:]) == 4  # grid studies: one seed by default
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_sweep_checks_every_cell_before_running(capsys, tmp_path):
    code, _, err = run_cli(capsys, ["sweep", "table1", "--data", " ", "--dry-run",
                                    "--out", str(tmp_path)])
    assert code == 2 and "cell adas-elu: data.source: expected a non-empty string" in err
    assert not any(tmp_path.iterdir())


def test_exit_status_of_a_sweep():
    from xraygan.cli.sweep import exit_status

    ok = {"state": "COMPLETE", "failure": ""}
    bad = {"state": "FAIL", "failure": "ConfigError: x"}
    assert exit_status([]) == 0
    assert exit_status([ok, bad]) == 0
    assert exit_status([bad, bad]) == 3


def test_a_sweep_whose_every_trial_fails_exits_3(capsys, tmp_path):
    """A sweep whose every trial fails exits non-zero. Here the batch is larger than the
    data, which only the trial can see; one trial, no training step."""
    code, out, err = run_cli(capsys, [
        "sweep", "seeds", "--seeds", "1", "--image-size", "16", "--features", "4", "--steps", "2",
        "--batch-size", "64", "--num-images", "8", "--no-fid", "--no-progress", "--no-estimate",
        "--out", str(tmp_path / "s"), "--json", str(tmp_path / "s.json")])
    assert code == 3
    assert "all 1 trials failed; first failure: ConfigError: train.batch_size: 64 is larger" in err
    rows = json.loads((tmp_path / "s.json").read_text())["trials"]
    assert [r["state"] for r in rows] == ["FAIL"]


def test_train_json_writes_the_summary(capsys, tmp_path):
    out = tmp_path / "summary.json"
    code, _, _ = run_cli(capsys, ["train", *TINY, "--out", str(tmp_path / "runs"), "--json", str(out)])
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["status"] == "completed" and summary["step"] == 1
    assert summary["run_dir"].startswith(str(tmp_path / "runs"))
