"""Temporary stand-in for analysis.figures (same signatures) until it lands on main."""
from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def style() -> None:
    """Fonttype 42 and a fixed dpi."""
    matplotlib.rcParams.update({"pdf.fonttype": 42, "savefig.dpi": 150, "savefig.bbox": "tight"})


def save_figure(fig, name, data, outdir="figures", meta=None):
    """NAME.pdf/.png/.csv/.json."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for s in ("pdf", "png"):
        fig.savefig(out / f"{name}.{s}", metadata={"CreationDate": None} if s == "pdf" else {})
    data.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.json").write_text(json.dumps(meta or {}, sort_keys=True, default=str))
    return {"png": out / f"{name}.png"}


def save_table(df, name, outdir="figures", meta=None, floatfmt=".4g"):
    """NAME.md/.csv."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(df.to_string())
    return {"md": out / f"{name}.md"}
