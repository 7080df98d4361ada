"""Complexity tables: Tables 1/3 ratio views, Table 8 recomputed, original vs DWR backbones."""
from __future__ import annotations

import pandas as pd

from bnnlib.complexity import dwr_table
from bnnlib.models import get_spec

from .paper import PAPER_TABLE8
from .study import ALL_EXTRAS, QUANTITIES, _count

__all__ = ["scaling_table", "error_summary", "table8_rows", "dwr_rows"]


def scaling_table(long: pd.DataFrame, scope: str = "body") -> pd.DataFrame:
    """Wide view of ``scaling_rows``: predicted and measured ratio per quantity, one scope."""
    sub = long[long["scope"] == scope]
    keys = ["model", "precision", "transform", "s"]
    wide = sub.pivot_table(index=keys, columns="quantity", values=["predicted", "measured"],
                           sort=False)
    wide.columns = [f"{q}_{kind[:4]}" for kind, q in wide.columns]
    cols = [f"{q}_{k}" for q in QUANTITIES for k in ("pred", "meas")]
    return wide[cols].reset_index()


def error_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Worst and median |measured/predicted - 1| per (precision, transform, scope, quantity)."""
    keys = ["precision", "transform", "scope", "quantity"]
    err = long.assign(abs_err=long["rel_error"].abs())
    g = err.groupby(keys, sort=True)["abs_err"]
    out = pd.DataFrame({"n": g.size(), "median_abs_rel_error": g.median(),
                        "max_abs_rel_error": g.max()}).reset_index()
    worst = err.loc[g.idxmax().values, "model"].to_numpy()
    return out.assign(worst_model=worst)


def _spec_for(name: str, overrides: dict, widths):
    spec = get_spec(name, **overrides)
    if widths is not None:
        stages = tuple(tuple(tuple(w for _ in blk) for blk in st) for st, w in zip(spec.stages, widths))
        spec = spec.replace(stages=stages)
    return spec


def table8_rows() -> pd.DataFrame:
    """Table 8's OPs column recomputed, next to the paper's numbers (x 1e8 OPs)."""
    rows = []
    for method, reshaping, paper, name, overrides, widths in PAPER_TABLE8:
        spec = _spec_for(name, overrides, widths)
        t, extra = _count(spec).totals, _count(spec, ALL_EXTRAS).totals
        bin_sc = _count(spec.replace(binary_shortcut=True)).totals if spec.binary else t
        rows.append({"method": method, "reshaping": reshaping, "model": name,
                     "widths": "/".join(map(str, spec.widths)), "paper_ops_1e8": paper,
                     "ours_ops_1e8": t["ops"] / 1e8, "ours_all_extras_ops_1e8": extra["ops"] / 1e8,
                     "ours_binary_1x1_ops_1e8": bin_sc["ops"] / 1e8,
                     "ours_over_paper": t["ops"] / 1e8 / paper, "flops_1e8": t["flops"] / 1e8,
                     "bops_1e9": t["bops"] / 1e9, "params_M": t["params"] / 1e6,
                     "acts_M": t["acts"] / 1e6})
    return pd.DataFrame(rows)


def dwr_rows() -> pd.DataFrame:
    """Original vs naive vs DWR for every backbone in DWR_PAIRS (``bnnlib.complexity.dwr_table``)."""
    return pd.DataFrame(dwr_table())
