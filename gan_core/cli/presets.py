"""``xraygan presets``: list the model presets, or show one's layers at an image size."""

from __future__ import annotations

import argparse

from ..config import ModelConfig
from .argtypes import field_type


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list model presets or show one's layers",
                       description="Without NAME: list presets. With NAME: G and D layer tables.")
    p.add_argument("name", nargs="?", help="a preset name (default: list them all)")
    p.add_argument("--image-size", type=field_type(ModelConfig, "image_size"), default=64,
                   metavar="N", help="image side, a power of two >= 16")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models import (
        build_models,
        count_parameters,
        describe_plan,
        plan_discriminator,
        plan_generator,
    )
    from ..presets import PRESETS, get_preset

    if args.name is None:
        for name in PRESETS.names():
            m = get_preset(name, args.image_size)
            print(f"{name:16s} G {m.g_activation:10s} D {m.d_activation:10s} batch norm: {m.batchnorm}")
        return 0
    cfg = get_preset(args.name, args.image_size)
    from ..guard import check_models

    check_models(cfg, "--image-size", what=f"building {args.name} at {args.image_size}x{args.image_size}")
    G, D = build_models(cfg)
    print(f"{args.name} at {args.image_size}x{args.image_size}")
    print(f"Generator ({count_parameters(G):,} parameters)")
    print(describe_plan(plan_generator(cfg)))
    print(f"Discriminator ({count_parameters(D):,} parameters)")
    print(describe_plan(plan_discriminator(cfg)))
    return 0
