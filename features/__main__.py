"""``python -m features kinds`` lists the registered feature kinds;
``python -m features check SPEC.yaml`` validates a spec file."""
from __future__ import annotations

import argparse
import sys

from features.registry import describe_kinds
from features.spec import SpecError, load_spec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m features", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("kinds", help="list the registered feature kinds and their parameters")
    chk = sub.add_parser("check", help="validate a feature spec YAML file")
    chk.add_argument("spec")
    args = ap.parse_args(argv)
    if args.cmd == "kinds":
        print(describe_kinds())
        return 0
    try:
        spec = load_spec(args.spec)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.spec}: {len(spec.features)} features in groups {spec.groups}; sets: {', '.join(spec.feature_sets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
