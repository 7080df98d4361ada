"""CLI of the CPU regime study: ``python -m analysis.regime {status,report}``."""
from __future__ import annotations

import sys
from pathlib import Path

from bnnlib.cli import Parser, fail

ROOT = Path(__file__).resolve().parents[2]


def _parser() -> Parser:
    p = Parser(prog="python -m analysis.regime",
               description="CPU proxy regime (CIFAR-10 at 16x16): the recipe and epoch count of the "
                           "cpu presets, from the learning/budget-curve records (validation "
                           "accuracy only). Training: python -m analysis.sweep run "
                           "analysis/regime/learning_curves.yaml; figures: the regime notebook.",
               example="python -m analysis.regime report --spec learning_curves")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{status,report}")
    for name, what in (("status", "finished / pending runs of the sweep"),
                       ("report", "write the learning-curve figure and the choice tables")):
        s = sub.add_parser(name, help=what, description=what,
                           example=f"python -m analysis.regime {name} --spec learning_curves")
        s.add_argument("--spec", default="learning_curves",
                       help="sweep YAML: a name in analysis/regime/ (learning_curves, quick_curves) or a path")
        s.add_argument("--records", default=None,
                       help="records folder; none: the spec's records_dir (results/cpu/regime)")
        if name == "report":
            s.add_argument("--figures", default=str(ROOT / "figures" / "cpu" / "regime"),
                           help="output folder for the figure and tables")
            s.add_argument("--tol", type=float, default=0.5,
                           help="points of validation accuracy, a number > 0: largest gap to the "
                                "longest schedule for a length to count as converged")
            s.add_argument("--recipe-epochs", type=int, default=15,
                           help="schedule length in epochs at which the recipes are compared")
    return p


def main(argv=None) -> int:
    """Run the CLI; bad input prints one line and returns 2."""
    a = _parser().parse_args(argv)
    from analysis.figures import provenance
    from analysis.sweep import load_spec, status
    from . import load, report
    from .study import resolve_spec
    try:
        recs, configs = load(a.records, a.spec)
        if a.cmd == "status":
            print(status(configs, a.records or load_spec(resolve_spec(a.spec))[2]))
            return 0
        if a.tol <= 0:
            raise ValueError(f"tol: got {a.tol}; allowed: a number > 0 (points)")
        if not recs:
            raise ValueError(f"records: got none finished for {a.spec}; allowed: a folder with "
                             "the sweep's records (see status)")
        out = report(recs, a.figures, {**provenance(recs, a.records), "preset": "cpu"},
                     a.recipe_epochs, a.tol)
    except ValueError as e:
        return fail(e)
    print(out["recipes"].to_string(index=False))
    print(out["budget"].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
