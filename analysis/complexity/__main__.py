"""CLI of the complexity study: ``python -m analysis.complexity {scaling,errors,table8,dwr}``.

Prints one of the study's tables (no training, no files written unless ``--csv``); the
notebook ``notebooks/complexity.ipynb`` makes the figures.
"""
from __future__ import annotations

import sys

from bnnlib.cli import Parser, fail
from bnnlib.models import list_models

from .study import PRECISIONS, scaling_rows
from .tables import dwr_rows, error_summary, scaling_table, table8_rows

TABLES = ("scaling", "errors", "table8", "dwr")


def main(argv=None) -> int:
    """Print a table of the complexity study; exit 2 on bad input."""
    ap = Parser(prog="python -m analysis.complexity",
                description="Tables 1, 3 and 8 of the DWR paper checked on the models bnnlib builds "
                            "(OPs = BOPs/64 + FLOPs).",
                example="python -m analysis.complexity scaling --models resnet20 vgg11 --factors 2 3 --scope whole")
    ap.add_argument("table", choices=TABLES, help="scaling: predicted vs measured ratios (Tables 1/3); "
                    "errors: their worst/median error; table8: Table 8's OPs recomputed; dwr: original "
                    "vs naive vs DWR, every backbone")
    ap.add_argument("--models", nargs="+", default=["resnet20", "resnet18", "vgg11"], metavar="MODEL",
                    help=f"scaling/errors: registered models, any of {list_models()}")
    ap.add_argument("--factors", nargs="+", type=float, default=[2.0, 3.0], metavar="S",
                    help="scaling/errors: scaling factors s, numbers > 1 (depth rows only where s "
                         "divides every stage)")
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), metavar="P",
                    help=f"scaling/errors: any of {list(PRECISIONS)}")
    ap.add_argument("--scope", choices=("body", "whole"), default="body",
                    help="scaling: ratios of the scaled stages only, or of the whole model")
    ap.add_argument("--csv", metavar="PATH", help="also write the table to this CSV file")
    a = ap.parse_args(argv)
    try:
        if a.table in ("scaling", "errors"):
            long = scaling_rows(a.models, a.factors, a.precisions)
            df = scaling_table(long, a.scope) if a.table == "scaling" else error_summary(long)
        else:
            df = table8_rows() if a.table == "table8" else dwr_rows()
    except ValueError as e:
        return fail(e)
    import pandas as pd
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(df.round(4).to_string(index=False))
    if a.csv:
        df.to_csv(a.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
