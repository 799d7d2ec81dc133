"""``xraygan sample RUN --n N --out DIR``: single PNG files from a run's final generator,
for tools that read a folder of images (``python -m pytorch_fid``, torch-fidelity, a viewer).

Images come at the run's size, one file each (000000.png, 000001.png, ...), grayscale for
1-channel models. Generation runs ``--batch-size`` images at a time and writes them before the
next batch, so N = 100000 holds one batch in memory, not N images. The noise is drawn on the
CPU from ``--noise-seed`` exactly as ``xraygan fid RUN`` draws it (xraygan.sampling), so the
same seed and batch size give the very images ``xraygan fid`` scores.

``--bits 16`` writes 16-bit PNGs (PIL mode I;16) for medical-imaging tools. pytorch-fid and
torch-fidelity open images with PIL's ``convert("RGB")``, which saturates 16-bit values at
255 instead of scaling them: give those tools the 8-bit default.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import runs
from ..errors import ConfigError
from ..progress import Progress
from .argtypes import add_device_argument, existing_dir, int_type, out_dir, seed_type

if TYPE_CHECKING:
    import numpy as np
    import torch

INFO = "samples.json"
GEN_CHUNK = 512  # images per forward pass of G, whatever --batch-size (the noise draws) is


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="write N single PNG samples of a run (for pytorch-fid, torch-fidelity)",
        description="Generate N images from a run's last checkpoint and write one PNG per "
        "image into DIR, at the run's image size. The folder is what python -m pytorch_fid "
        "and torch-fidelity read.",
    )
    p.add_argument("run", type=existing_dir, metavar="RUN", help="a run folder with checkpoints/last.pt")
    p.add_argument("--n", type=int_type(min=1), default=2048, help="number of images")
    p.add_argument("--out", type=out_dir, metavar="DIR", required=True,
                   help="folder for the PNGs (created; must not already hold PNGs)")
    p.add_argument("--bits", type=int_type(8, 16), choices=(8, 16), default=8,
                   help="bit depth of the PNGs; FID tools need 8 (they clip 16-bit files)")
    p.add_argument("--batch-size", type=int_type(min=1), default=256,
                   help="images generated per forward pass")
    p.add_argument("--noise-seed", type=seed_type(), default=12345,
                   help="seed of the latent noise; with the same value and --batch-size, xraygan fid scores the same images")
    add_device_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    p.set_defaults(func=run)


def to_pixels(images: torch.Tensor, bits: int) -> np.ndarray:
    """G output in [-1, 1], (B, C, H, W) -> (B, H, W) or (B, H, W, C) uint8 / uint16.

    8 bits round exactly as the sample grids and FID do (xraygan.imageio.to_uint8)."""
    import numpy as np

    top = 255.0 if bits == 8 else 65535.0
    dtype = np.uint8 if bits == 8 else np.uint16
    x = images.detach().float().add(1.0).mul(top / 2).round_().clamp_(0, top).cpu().numpy()
    x = x.astype(dtype)
    return x[:, 0] if x.shape[1] == 1 else np.moveaxis(x, 1, -1)


def png_file(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    # (H, W) uint16 -> mode I;16; (H, W) uint8 -> L; (H, W, 3) uint8 -> RGB
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_samples(run_dir: Path, n: int, out: Path, *, bits: int = 8, batch_size: int = 256,
                  noise_seed: int = 12345, device: str = "cpu",
                  progress: bool = True) -> dict[str, Any]:
    """Write ``n`` PNGs of ``run_dir``'s generator into ``out``; return what was written."""
    import torch

    from ..sampling import load_generator

    if bits not in (8, 16):
        raise ConfigError(f"--bits: expected 8 or 16, got {bits}")
    if not runs.checkpoint_path(run_dir).is_file():
        raise ConfigError(f"{run_dir}: no checkpoint at {runs.checkpoint_path(run_dir)}; "
                          "expected a run folder written by xraygan train")
    if out.is_dir() and any(out.glob("*.png")):
        raise ConfigError(f"--out {out}: the folder already holds PNG files; FID tools read "
                          "every image in it, so choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    from ..guard import check_allocation, check_generation

    model = runs.read_config(run_dir).model
    # G runs on at most GEN_CHUNK images at a time: --batch-size decides the noise draws (and
    # so which images come out), not how much memory a forward pass takes
    check_generation(model, n, min(batch_size, GEN_CHUNK), keep=False, device=device,
                     flags="--batch-size", what=f"sampling {run_dir}")
    check_allocation(4 * min(batch_size, n) * model.latent_dim,
                     f"the latent noise of one batch of {min(batch_size, n):,} images",
                     "--batch-size", device="cpu")
    g, cfg = load_generator(run_dir, device=device)
    if bits == 16 and cfg.model.channels != 1:
        raise ConfigError(f"--bits 16: PNG 16-bit is written for grayscale models only; "
                          f"{run_dir} generates {cfg.model.channels} channels")
    step = int(runs.read_summary(run_dir).get("step", 0) or 0)
    width = max(6, len(str(n - 1)))
    gen = torch.Generator().manual_seed(noise_seed)  # the draw order of sampling.generate_images
    t0 = time.perf_counter()
    with Progress(n, desc=f"sample {run_dir.name}", enabled=progress, unit="image") as bar, \
            torch.inference_mode():
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            z = torch.randn(b, cfg.model.latent_dim, generator=gen)
            for c in range(0, b, GEN_CHUNK):
                pixels = to_pixels(g(z[c : c + GEN_CHUNK].to(device)), bits)  # (<= chunk, H, W[, C])
                for i in range(len(pixels)):
                    runs.atomic_write_bytes(out / f"{start + c + i:0{width}d}.png",
                                            png_file(pixels[i]))
                bar.update(len(pixels))
    info = {"run": str(Path(run_dir).resolve()), "step": step, "n": n, "bits": bits,
            "image_size": cfg.model.image_size, "channels": cfg.model.channels,
            "noise_seed": noise_seed, "batch_size": batch_size,
            "seconds": round(time.perf_counter() - t0, 3)}
    runs.atomic_write_text(out / INFO, json.dumps(info, indent=2) + "\n")
    return info


def run(args: argparse.Namespace) -> int:
    from ..train import resolve_device

    info = write_samples(args.run, args.n, args.out, bits=args.bits, batch_size=args.batch_size,
                         noise_seed=args.noise_seed, device=str(resolve_device(args.device)),
                         progress=not args.no_progress)
    print(f"{info['n']} PNGs ({info['image_size']}x{info['image_size']}, {info['bits']}-bit) "
          f"from {args.run} step {info['step']} -> {args.out} in {info['seconds']:.1f} s")
    print(f"FID with pytorch-fid: python -m pytorch_fid {args.out} REFERENCE_DIR_OR_STATS.npz")
    return 0
