"""CLI of the inference-speed study: ``python -m analysis.inference_speed {run,table,verdict}``.

run:     measure what the preset asks for and is not yet recorded (``--remeasure``: all)
table:   print the latency table of the records
verdict: print DWR vs original on the binary kernels, and the latency/OPs/activations
         correlations
"""
from __future__ import annotations

import sys

from bnnlib.cli import fail

from analysis.notebooks import load_preset, study_parser

from . import study as S
from . import tables as T


def main(argv=None) -> int:
    """Run the CLI; bad input prints one line and returns 2."""
    ap = study_parser("inference_speed", "inference_speed",
                      "BNN latency on OpenVINO's binary kernels for original, naive and DWR backbones "
                      "(bnnlib.deploy); records under results/PRESET/inference_speed/.",
                      {"run": "measure missing cells of the preset (records written)",
                       "table": "print the latency table",
                       "verdict": "print DWR vs original and the correlations",
                       "profile": "redo the per-layer breakdown of every record (timings kept)"},
                      "python -m analysis.inference_speed verdict --preset quick")
    ap.add_argument("--remeasure", action="store_true", help="run: time every cell again, overwriting records")
    a = ap.parse_args(argv)
    try:
        cfg = load_preset("inference_speed", a.preset)
        records = a.records or cfg.get("records_dir")
        if a.command == "profile":
            return 0 if S.reprofile(records, runs=cfg["profile_runs"]) else fail(
                f"--records: got {records!r}; allowed: a folder holding inference_speed records")
        if a.command == "run":
            recs = S.run(cfg["backbones"], cfg["kinds"], cfg["threads"], cfg["batch"], cfg["rounds"],
                         cfg["iters"], cfg["warmup"], cfg["profile_runs"], records, a.preset, a.remeasure)
        else:
            recs = S.load(records)
            if not recs:
                return fail(f"--records: got {records!r}; allowed: a folder holding inference_speed "
                            "records (run first)")
    except (ValueError, ImportError) as e:
        return fail(e)
    import pandas as pd
    with pd.option_context("display.max_rows", None, "display.width", 220, "display.max_columns", 30):
        if a.command in ("run", "table"):
            print(T.latency_table(recs).round(3).to_string(index=False))
        if a.command in ("run", "verdict"):
            print(T.verdicts(recs).to_string(index=False))
            print(T.correlations(recs).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
