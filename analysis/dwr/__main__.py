"""CLI of the DWR study: ``python -m analysis.dwr {plan,run} --preset NAME``.

Runs the jobs of a notebook preset without the notebook (finished records are skipped); the
notebook ``notebooks/dwr_tables.ipynb`` builds the tables and figures from the records.
"""
from __future__ import annotations

import sys

from analysis.sweep import add_seeds_flag, restrict_seeds
from bnnlib.cli import fail

from .study import PRESET_KEYS, TABLES, find_record, jobs, record_index, run_jobs
from .tables import resolve_dataset_name

NOTEBOOK = "dwr_tables"


def study_params(values: dict) -> dict:
    """The study's preset dict (``PRESET_KEYS``) from the notebook's parameter values."""
    p = {k: values[k] for k in PRESET_KEYS if k in values}
    p.update(dataset=resolve_dataset_name(values["dataset"], records_dir=values["records_dir"]),
             eval_test="end", progress=False)
    p.pop("workers", None)
    return p


def main(argv=None) -> int:
    """plan: jobs per table and how many have records; run: run the missing ones."""
    from analysis import notebooks
    ap = notebooks.study_parser(
        "dwr", NOTEBOOK, "Plan or run the DWR tables' training jobs of a notebook preset (tables "
        "and figures: the dwr_tables notebook).",
        {"plan": "jobs per table and how many have records", "run": "run the missing ones"},
        "python -m analysis.dwr plan --preset quick")
    ap.add_argument("--tables", nargs="+", metavar="TABLE",
                    help=f"tables to plan or run, any of {list(TABLES)}; none: the preset's")
    ap.add_argument("--workers", type=int, help="training processes, an int >= 1; none: the preset's")
    add_seeds_flag(ap)
    a = ap.parse_args(argv)
    try:
        over = {k: v for k, v in (("records_dir", a.records), ("tables", a.tables),
                                  ("workers", a.workers)) if v is not None}
        values = restrict_seeds(notebooks.resolve(NOTEBOOK, a.preset, over), a.seeds)
        p, rdir = study_params(values), values["records_dir"]
        if a.command == "plan":
            index = record_index(rdir)
            for t in values["tables"]:
                js = jobs(t, p)
                found = sum(find_record(j, p, index) is not None for j in js)
                print(f"{t}: {len(js)} jobs, {found} with records in {rdir}")
            return 0
        for t in values["tables"]:
            done = run_jobs(jobs(t, p), p, rdir, workers=values["workers"])
            print(f"{t}: {sum(d[2] == 'finished' for d in done)}/{len(done)} finished")
    except ValueError as e:
        return fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
