"""What the records of a preset cost, measured: per study, the runs and the wall time their
records hold, with the machines they ran on.

``analysis.plan`` estimates what a preset will cost; this module reads what it did cost. A
record's wall time is the larger of its ``timings.total_s`` and the sum of its per-epoch
``time_s`` (a resumed run's ``total_s`` covers only its last segment; its epoch history covers
every epoch). CPU runs here use one thread each, so on CPU the sum is in core-hours; runs that
shared the machine with others were slower than alone, so these are costs under the load they
met, not a benchmark.

    python -m analysis.spent --preset cpu
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from bnnlib import records
from bnnlib.cli import Parser, fail

__all__ = ["record_seconds", "record_machine", "spent", "main"]

ROOT = Path(__file__).resolve().parents[1]


def record_seconds(rec: dict) -> float | None:
    """Wall seconds of one record (None when it holds no timing)."""
    t = rec.get("timings") or {}
    total = t.get("total_s")
    epochs = ((rec.get("metrics") or {}).get("epochs") or []) if isinstance(rec.get("metrics"), dict) else []
    per_epoch = sum(float(e.get("time_s") or 0.0) for e in epochs if isinstance(e, dict))
    if total is None and not per_epoch:
        return None
    return max(float(total or 0.0), per_epoch)


def record_machine(rec: dict) -> str:
    """The CPU or GPU a record ran on, as it names it ('?' when it does not)."""
    d = rec.get("device")
    if isinstance(d, dict):
        return str(d.get("gpu_name") or d.get("name") or d.get("cpu") or d.get("type") or "?")
    return str(d) if d else "?"


def spent(preset: str, results_dir: str | Path | None = None, by_seed: bool = False) -> pd.DataFrame:
    """One row per study folder of ``results_dir/PRESET`` (per study and record seed with
    ``by_seed``; '-' for a record without one): records with a timing, of them finished, hours
    of wall time in all, the longest record, and the machines."""
    base = Path(results_dir or ROOT / "results") / preset
    if not base.is_dir():
        have = sorted(p.name for p in base.parent.iterdir() if p.is_dir()) if base.parent.is_dir() else []
        raise ValueError(f"preset: got {preset!r} (no folder {base}); allowed: {have}")
    rows = []
    for study in sorted(p for p in base.iterdir() if p.is_dir()):
        for f in sorted(study.rglob("*.json")):
            try:
                rec = records.read_json(f)
            except (OSError, ValueError):
                continue
            s = record_seconds(rec) if isinstance(rec, dict) else None
            if s is not None:
                seed = rec.get("seed")
                rows.append({"study": study.name, "seed": "-" if seed is None else str(seed),
                             "s": s, "finished": rec.get("status") == "finished",
                             "machine": record_machine(rec)})
    keys = ["study", "seed"] if by_seed else ["study"]
    cols = keys + ["records", "finished", "hours", "longest_h", "machines"]
    if not rows:
        return pd.DataFrame(columns=cols)
    return (pd.DataFrame(rows).groupby(keys, as_index=False, sort=True)
            .agg(records=("s", "size"), finished=("finished", "sum"),
                 hours=("s", lambda v: v.sum() / 3600), longest_h=("s", lambda v: v.max() / 3600),
                 machines=("machine", lambda v: ", ".join(sorted(set(v)))))[cols])


def main(argv=None) -> int:
    """CLI: the table of ``spent`` as Markdown, and the total."""
    from analysis.figures import to_markdown
    ap = Parser(prog="python -m analysis.spent", description=__doc__.split("\n")[0],
                example="python -m analysis.spent --preset cpu")
    ap.add_argument("--preset", default="cpu", help="results/PRESET/ is read")
    ap.add_argument("--results", default=None, help="results folder (default: the repo's results/)")
    ap.add_argument("--by-seed", action="store_true", help="one row per study and record seed")
    a = ap.parse_args(argv)
    try:
        df = spent(a.preset, a.results, a.by_seed)
    except ValueError as e:
        return fail(e)
    print(to_markdown(df, ".3g"), end="")
    print(f"TOTAL {a.preset}: {df['hours'].sum():.2f} h of recorded wall time in {int(df['records'].sum())} "
          "records (one thread per CPU run: core-hours; measured under the load each run met)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
