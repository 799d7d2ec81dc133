"""``xraygan claims list | calibrate``: the registered claims and their rules, and the rules'
calibration on simulated studies with known truth (gan_core/claims/engine.py, gan_core/claims/calibration.py)."""

from __future__ import annotations

import argparse

from .argtypes import int_type, output_file

REPS = 400  # simulated studies per scenario: about 6 minutes on 2 shared vCPUs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "claims",
        help="the paper's claims: their registered rules, and the rules' calibration",
        description="`list` prints every registered claim with its protocol (hypothesis, test, "
        "family, alpha, smallest effect, margin, preconditions, version, sha256): what "
        "`xraygan sweep` stores in a study before its first trial. `calibrate` runs every rule "
        "on simulated studies with known truth (null, the declared effect, degenerate "
        "generators, runs stuck in T0, late or too short, single runs, Holm families) and prints "
        "its false-positive rate, power and untestable rate.",
    )
    sp = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sp.add_parser("list", help="print the registered claims and their rules")
    ls.add_argument("--study", metavar="KIND", help="only the claims a study of this kind "
                    "registers (e.g. table1; default: all)")
    ls.add_argument("--json", type=output_file, metavar="FILE",
                    help="also write the registration (canonical JSON) to FILE (default: none)")
    ls.set_defaults(func=run_list)
    cal = sp.add_parser("calibrate", help="false-positive rate, power and untestable rate of "
                        "every rule on simulated studies")
    cal.add_argument("--reps", type=int_type(10, 1_000_000), default=REPS, metavar="N",
                     help=f"simulated studies per scenario for the null and the effect; a "
                     f"quarter for broken runs (default: {REPS})")
    cal.add_argument("--seeds", type=int_type(2, 1000), default=None, metavar="N",
                     help="seeds per configuration of each simulated study (default: the "
                     "a priori number for the declared power; 3 is the quick scale's)")
    cal.add_argument("--sim-seed", type=int_type(0, 2**31 - 1), default=0, metavar="N",
                     help="random seed of the simulation (default: 0)")
    cal.add_argument("--markdown", type=output_file, metavar="FILE",
                     help="also write the table as a markdown page (docs/claims-calibration.md)")
    cal.set_defaults(func=run_calibrate)


def run_list(args: argparse.Namespace) -> int:
    from xraygan.ablations.registration import study_protocols
    from xraygan.claims.engine import protocols
    from xraygan.claims.protocol import canonical_json, registration

    if args.study:
        from xraygan.ablations import STUDIES, load_studies
        from xraygan.errors import ConfigError

        load_studies()
        kinds = set(STUDIES.names()) | {s for p in protocols().values() for s in p.studies}
        if args.study not in kinds:  # an empty list would read as "no claims apply"
            raise ConfigError(f"--study {args.study!r}: no study of that kind; expected one of "
                              f"{', '.join(sorted(kinds))}")
    protos = study_protocols(args.study) if args.study else list(protocols().values())
    if args.json:
        from xraygan.runs import atomic_write_text

        atomic_write_text(args.json, canonical_json(registration(protos)) + "\n")
    for p in protos:
        print(f"{p.key} (version {p.version}, sha256 {p.sha256()[:12]}, family {p.family}, "
              f"studies {', '.join(p.studies) or '—'})")
        print(f"  claim: {p.statement}")
        print(f"  rule:  {p.rule_text()}")
        print()
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    import time

    from xraygan.claims.calibration import calibrate, calibration_markdown, calibration_text

    t = time.perf_counter()
    table = calibrate(reps=args.reps, seeds=args.seeds, seed=args.sim_seed)
    took = time.perf_counter() - t
    print(calibration_text(table))
    print(f"took {took:.0f} s")
    if args.markdown:
        from xraygan.runs import atomic_write_text

        atomic_write_text(args.markdown, calibration_markdown(table, seed=args.sim_seed,
                                                              seconds=took))
        print(f"written: {args.markdown}")
    return 0
