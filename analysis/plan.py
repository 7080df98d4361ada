"""``python -m analysis.plan``: runs, epochs and estimated GPU-hours of every study's preset.

    python -m analysis.plan --preset paper --gpus 8            # all studies, one line each + total
    python -m analysis.plan --preset paper --assume compiled   # as if the speed options were on

Estimates come from ``analysis.cost`` (a small table of quoted seconds per epoch, shown with its
source, and stated assumptions); nothing here is a GPU measurement. A preset whose grid cannot
be built is refused here with the reason (exit 2), before anything trains.
"""
from __future__ import annotations

import argparse
import sys

from analysis import cost

__all__ = ["STUDIES", "study_estimate", "plan", "main"]

# study -> notebook whose presets it reads
STUDIES = {"gain_surface": "gain_surface", "dwr": "dwr_tables",
           "error_accumulation": "error_accumulation", "complexity": "complexity"}
MEASURE_S = 2.0  # assumed GPU seconds of one at-initialisation error-accumulation measurement


def _preset(study: str, preset: str) -> dict:
    """The notebook's defaults overlaid by the preset, validated (as a notebook run sees them)."""
    from analysis.notebooks import resolve
    return resolve(STUDIES[study], preset)


def _gain_surface(p: dict, mode, gpus) -> dict:
    from analysis.gain_surface.study import study_configs
    return cost.estimate(study_configs(p), pack=int(p.get("pack") or 1), mode=mode, gpus=gpus)


def _dwr(p: dict, mode, gpus) -> dict:
    from analysis.dwr import study as S
    from analysis.sweep import config_hash
    keys = set(S.PRESET_KEYS)
    P = {k: v for k, v in p.items() if k in keys}
    P.update(eval_test="end", progress=False)
    if P.get("dataset") in (None, "auto"):
        P["dataset"] = "cifar10"  # costing only: the data is not read
    cfgs = {config_hash(c): c for t in p.get("tables", S.TABLES)
            for c in S.plan_configs(S.jobs(t, P), P)}
    return cost.estimate(list(cfgs.values()), pack=int(p.get("pack") or 1), mode=mode, gpus=gpus)


def _error_accumulation(p: dict, mode, gpus) -> dict:
    """Trained measurements train a net first (costed as bnnlib.train runs); the others
    measure a few batches at initialisation (``MEASURE_S`` each, assumed)."""
    from analysis.error_accumulation import study as EA
    grid = EA.grid(p["backbones"], p["depths"], p["widths"], p["binarizers"], p["seeds"],
                   trained_epochs=p.get("trained_epochs", [0]),
                   trained_binarizers=p.get("trained_binarizers"), acts=p.get("acts") or [EA.DEFAULT_ACT],
                   dataset="synthetic", train_subset=p.get("train_subset"),
                   train_options=p.get("train_options"), resolution=p.get("resolution", 32))
    cfgs = [EA.train_config(c) for c in grid if c["trained_epochs"] > 0]  # what run_study trains
    extra = [("measurements", MEASURE_S * len(grid))]
    est = cost.estimate(cfgs, pack=int(p.get("pack") or 1), mode=mode, gpus=gpus, extra=extra)
    est["measurements"] = len(grid)
    return est


def _complexity(p: dict, mode, gpus) -> dict:
    return {"runs": 0, "epochs": 0, "gpu_hours": 0.0, "wall_hours": 0.0, "longest_run_hours": 0.0,
            "modes": ["none"], "gpus": gpus, "pack": 1}


_ESTIMATORS = {"gain_surface": _gain_surface, "dwr": _dwr,
               "error_accumulation": _error_accumulation, "complexity": _complexity}


def study_estimate(study: str, preset: str, gpus: int = 1, assume: str | None = None) -> dict:
    """``analysis.cost.estimate`` of one study's preset (``assume``: a speed mode to cost every
    run in instead of the one its config implies)."""
    if study not in STUDIES:
        raise ValueError(f"study: got {study!r}; allowed: {list(STUDIES)}")
    if assume is not None and assume not in cost.SPEED_MODES:
        raise ValueError(f"assume: got {assume!r}; allowed: {cost.SPEED_MODES}")
    return _ESTIMATORS[study](_preset(study, preset), assume, gpus)


def plan(preset: str, studies=None, gpus: int = 1, assume: str | None = None) -> list[tuple[str, dict]]:
    """[(study, estimate)] for ``studies`` (default: all that have ``preset``)."""
    from analysis.notebooks import list_presets
    names = studies or [s for s, nb in STUDIES.items() if preset in list_presets(nb)]
    return [(s, study_estimate(s, preset, gpus, assume)) for s in names]


def main(argv=None) -> int:
    """CLI: one line per study, the total, and the cost table with its sources."""
    ap = argparse.ArgumentParser(prog="python -m analysis.plan", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--study", action="append", choices=list(STUDIES), help="default: every study")
    ap.add_argument("--gpus", type=int, default=1)
    ap.add_argument("--assume", choices=cost.SPEED_MODES,
                    help="cost every run in this speed mode (default: what each config sets)")
    a = ap.parse_args(argv)
    try:
        rows = plan(a.preset, a.study, a.gpus, a.assume)
    except ValueError as e:  # a grid that cannot be built: refused with the reason
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(e["gpu_hours"] for _, e in rows)
    for s, e in rows:
        print(cost.format_plan(f"{s}/{a.preset}", e))
    longest = max((e["longest_run_hours"] for _, e in rows), default=0.0)
    print(f"TOTAL {a.preset}: ~{total:.1f} GPU-hours, ~{max(total / a.gpus, longest):.1f} h on "
          f"{a.gpus} GPU{'s' if a.gpus > 1 else ''} (estimate, not a measurement)")
    print(cost.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
