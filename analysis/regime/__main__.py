"""CLI of the CPU regime study.

  python -m analysis.regime status              # runs finished / pending of learning_curves.yaml
  python -m analysis.regime report [--figures DIR] [--records DIR] [--tol 0.5]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.regime",
        description="CPU proxy regime (CIFAR-10 at 16x16): recipe and epoch count from the "
                    "learning/budget-curve records (validation accuracy only).",
        epilog="example: python -m analysis.regime report --figures figures/cpu/regime",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="finished / pending runs of analysis/regime/learning_curves.yaml")
    r = sub.add_parser("report", help="write the learning-curve figure and the choice tables",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       epilog="example: python -m analysis.regime report --tol 0.5")
    r.add_argument("--spec", default="learning_curves",
                   help="sweep YAML: a name in analysis/regime/ or a path")
    r.add_argument("--records", default=None,
                   help="records folder (default: results/cpu/regime under the repo root)")
    r.add_argument("--figures", default=str(ROOT / "figures" / "cpu" / "regime"),
                   help="output folder for figures and tables")
    r.add_argument("--tol", type=float, default=0.5,
                   help="points of validation accuracy: largest allowed gap to the longest run")
    r.add_argument("--recipe-epochs", type=int, default=15,
                   help="schedule length (epochs) at which the recipes are compared")
    return p


def main(argv=None) -> int:
    """Run the CLI; bad input prints one line and returns 2."""
    a = _parser().parse_args(argv)
    from analysis.figures import provenance
    from analysis.sweep import status
    from . import load, report
    try:
        recs, configs = load(a.records, a.spec) if a.cmd == "report" else load()
        if a.cmd == "status":
            from .study import RECORDS_DIR
            print(status(configs, RECORDS_DIR))
            return 0
        if a.tol <= 0:
            raise ValueError(f"tol: got {a.tol}; allowed: a number > 0 (points)")
        if not recs:
            raise ValueError(f"records: got none finished in {a.records or 'results/cpu/regime'}; "
                             "allowed: a folder with the regime sweep's records")
        out = report(recs, a.figures, {**provenance(recs, "results/cpu/regime"), "preset": "cpu"},
                     a.recipe_epochs, a.tol)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out["recipes"].to_string(index=False))
    print(out["budget"].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
