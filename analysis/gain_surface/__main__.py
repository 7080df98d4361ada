"""CLI of the gain-surface study: ``python -m analysis.gain_surface {plan,sweep} --preset NAME``."""
from __future__ import annotations

import sys

from analysis import cost
from analysis.notebooks import study_parser
from analysis.sweep import EXECUTORS, add_executor_flags, add_seeds_flag, executor_options, restrict_seeds

from .study import count_ops, plan_estimate, run, study_configs


def load_preset(name: str) -> dict:
    """Parameters of preset ``name`` as the gain_surface notebook sees them."""
    from analysis.notebooks import resolve
    return resolve("gain_surface", name)


def main(argv=None) -> int:
    """``python -m analysis.gain_surface {plan,sweep} --preset NAME [--workers N]``."""
    ap = study_parser("gain_surface", "gain_surface", "Plan or run the gain-surface sweep of a "
                      "preset (figures: the gain_surface notebook).",
                      {"plan": "list the runs, their OPs and status, and a cost estimate",
                       "sweep": "train the missing runs"},
                      "python -m analysis.gain_surface plan --preset quick")
    ap.add_argument("--workers", type=int, default=None,
                    help="local processes, an int >= 1; none: one per visible GPU, else 1")
    ap.add_argument("--gpus", type=int, default=1, help="plan: GPUs to spread the estimate over, an int >= 1")
    ap.add_argument("--executor", choices=EXECUTORS,
                    help="where runs execute; none: packed when the preset packs, else local")
    add_seeds_flag(ap)
    add_executor_flags(ap)
    a = ap.parse_args(argv)
    try:
        params = load_preset(a.preset)  # the notebook's defaults overlaid by the preset, validated
        if a.records:
            params["records_dir"] = a.records
        params = restrict_seeds(params, a.seeds)
        configs = study_configs(params)
        if a.command == "plan":
            from analysis.sweep import status
            for c in configs:
                print(f"{'bnn' if c.binary else 'fp ':3s} seed={c.seed} {c.tag}  ops={count_ops(c.build_spec(), 'bnn' if c.binary else 'fp'):.4g}")
            print(f"{len(configs)} runs; status: {status(configs, params['records_dir'])}")
            print(cost.format_plan(f"gain_surface/{a.preset}", plan_estimate(params, a.gpus)))
            print(cost.describe())
            return 0
        ex = a.executor or None
        recs = run(params, a.workers, ex, executor_options(ex or "local", None, a) or None, a.shard)
    except ValueError as e:  # bad preset, grid or flag: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    bad = [r for r in recs if r.get("status") != "finished"]
    print(f"{len(recs)} records, {len(bad)} not finished")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
