"""CLI of the error-accumulation study: ``python -m analysis.error_accumulation {plan,run}``.

Runs the measurements of a notebook preset without the notebook (the records are what the
notebook ``notebooks/error_accumulation.ipynb`` plots; measured configs are skipped).
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

from analysis.sweep import add_seeds_flag, restrict_seeds
from bnnlib.cli import fail

from .study import grid, make_config, resolve_dataset, run_study

NOTEBOOK = "error_accumulation"
# notebook parameters that are arguments of grid()/make_config(), not the per-config axes
_PER_CONFIG = {"backbone", "blocks", "width", "binarizer", "seed", "act", "trained_epochs"}
_GRID_ARGS = (set(inspect.signature(grid).parameters) |
              set(inspect.signature(make_config).parameters)) - _PER_CONFIG - {"common"}


def configs_of(values: dict) -> list[dict]:
    """The configs a notebook parameter set measures (as the notebook's first cell builds them)."""
    kw = {k: v for k, v in values.items() if k in _GRID_ARGS or k == "trained_epochs"}
    kw["dataset"] = resolve_dataset(values["dataset"], values["records_dir"])
    return grid(**kw)


def main(argv=None) -> int:
    """plan: count configs and those already measured; run: measure the missing ones."""
    from analysis import notebooks
    ap = notebooks.study_parser(
        "error_accumulation", NOTEBOOK, "Measure quantization and gradient error per layer for a "
        "notebook preset (figures: the error_accumulation notebook).",
        {"plan": "configs and how many are measured", "run": "measure the missing ones"},
        "python -m analysis.error_accumulation plan --preset quick")
    ap.add_argument("--device", choices=("cpu", "cuda"), help="overrides the preset's device")
    ap.add_argument("--workers", type=int, help="run: training processes for the trained "
                    "configs, an int >= 1 (one thread each on CPU); none: one per visible GPU, else 1")
    add_seeds_flag(ap)
    a = ap.parse_args(argv)
    try:
        over = {k: v for k, v in (("records_dir", a.records), ("device", a.device)) if v}
        values = restrict_seeds(notebooks.resolve(NOTEBOOK, a.preset, over), a.seeds)
        configs = configs_of(values)
        if a.command == "plan":
            from .study import config_hash
            done = sum((Path(values["records_dir"]) / f"{config_hash(c)}.json").is_file() for c in configs)
            print(f"{len(configs)} configs; {done} measured, {len(configs) - done} to run "
                  f"in {values['records_dir']} (dataset {configs[0]['dataset']})")
            return 0
        run_study(configs, values["records_dir"], device=values["device"], workers=a.workers)
    except ValueError as e:
        return fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
