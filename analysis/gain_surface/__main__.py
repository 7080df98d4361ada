"""CLI of the gain-surface study: ``python -m analysis.gain_surface {plan,sweep} --preset NAME``."""
from __future__ import annotations

import argparse
import sys

from .study import count_ops, load_preset, run, study_configs


def main(argv=None) -> int:
    """``python -m analysis.gain_surface {plan,sweep} --preset NAME [--workers N]``."""
    ap = argparse.ArgumentParser(prog="python -m analysis.gain_surface",
                                 description="Plan or run the gain-surface sweep of a preset "
                                             "(figures: the gain_surface notebook).")
    ap.add_argument("command", choices=("plan", "sweep"))
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--records", help="records folder (overrides the preset's records_dir)")
    a = ap.parse_args(argv)
    params = load_preset(a.preset)
    if a.records:
        params["records_dir"] = a.records
    configs = study_configs(params)
    if a.command == "plan":
        from analysis.sweep import status
        for c in configs:
            print(f"{'bnn' if c.binary else 'fp ':3s} seed={c.seed} {c.tag}  ops={count_ops(c.build_spec(), 'bnn' if c.binary else 'fp'):.4g}")
        print(f"{len(configs)} runs; status: {status(configs, params['records_dir'])}")
        return 0
    recs = run(params, a.workers)
    bad = [r for r in recs if r.get("status") != "finished"]
    print(f"{len(recs)} records, {len(bad)} not finished")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
