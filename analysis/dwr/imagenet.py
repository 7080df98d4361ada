"""DWR on ImageNet (the paper's Table 8): Bi-Real-18 and its DWR backbone, plain and 2-step.

Rows (``ROWS``) pair a recipe of ``bnnlib.recipes`` with a backbone: the original, DWR through
the same chain as CIFAR (``pipeline.dwr``: widen by s = 2 -> short pre-training -> clustering
pruning calibrated on the validation split carved from train, eps bisected to the original's
OPs -> retraining), and the authors' published DWR widths. Every stage is a ``bnnlib.train``
run, so under ``torchrun`` each one trains data-parallel on all ranks (every rank walks the same
plan; rank 0 writes the records; the deterministic prune step runs on every rank).

CLI::

    python -m analysis.dwr.imagenet plan  --preset table8 --gpus 8   # runs, epochs, GPU-hours
    torchrun --nproc_per_node 8 -m analysis.dwr.imagenet run --preset table8
    python -m analysis.dwr.imagenet table --preset table8            # ours beside the paper

Presets live in ``analysis/dwr/presets/<name>.yaml``. Accuracies of the paper are top-1/top-5 on
the official ImageNet validation set, best epoch on that set (see the DWR facts); ours are the
final epoch on it, never used to pick anything.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import statistics
import sys
from pathlib import Path

import yaml

from bnnlib.cli import Parser, fail
from bnnlib.complexity import count as _count_uncached
from bnnlib.recipes import IMAGENET_TRAIN_IMAGES, recipe
from bnnlib.spec import spec_to_dict
from bnnlib.train_config import TrainConfig

from . import pipeline as D

__all__ = ["ROWS", "PAPER_TABLE8", "PUBLISHED_THROUGHPUT", "load_preset", "row_plan", "run",
           "table_rows", "plan_rows", "main"]

PRESET_DIR = Path(__file__).resolve().parent / "presets"
count = functools.lru_cache(maxsize=128)(_count_uncached)  # specs are frozen: count each once

# key -> (recipe, kind): kind 'train' trains the recipe's backbone, 'dwr' runs the DWR chain on it
ROWS = {
    "none/original": ("bireal18", "train"),
    "none/dwr": ("bireal18", "dwr"),
    "none/dwr_authors": ("bireal18_dwr", "train"),
    "react2/original": ("reactnet18_2step", "train"),
    "react2/dwr": ("reactnet18_2step", "dwr"),
    "react2/dwr_authors": ("reactnet18_dwr_2step", "train"),
}

# DWR (AAAI 2023) Table 8: (method, reshaping, OPs x 1e8, top-1 %, top-5 %); the rows we run.
# The authors' DWR rows are compared with the paper's DWR numbers (same published widths).
PAPER_TABLE8 = {
    "none/original": ("None", "Original", 1.74, 55.5, 78.3),
    "none/dwr": ("None", "DWR", 1.73, 56.9, 78.9),
    "none/dwr_authors": ("None", "DWR (authors' widths)", 1.73, 56.9, 78.9),
    "react2/original": ("ReActNet, 2-step", "Original", 1.81, 65.5, None),
    "react2/dwr": ("ReActNet, 2-step", "DWR", 1.81, 67.2, 87.2),
    "react2/dwr_authors": ("ReActNet, 2-step", "DWR (authors' widths)", 1.81, 67.2, 87.2),
}

# Not measured here (no GPU): derived from the paper's stated wall time, Sec. 5.3: "2 Nvidia RTX
# Titan GPUs ... the original one takes about 4 days, whereas the DWR backbone only needs 3.5
# days" (one step, 128 epochs per [dwr-code]): 128 x 1.28 M images / (2 GPUs x 96 h) per GPU.
PUBLISHED_THROUGHPUT = {
    "images_per_s_per_gpu": 128 * IMAGENET_TRAIN_IMAGES / (2 * 4 * 24 * 3600),
    "gpu": "NVIDIA RTX Titan",
    "source": "derived from DWR (AAAI 2023) Sec. 5.3: Bi-Real-18, 2 RTX Titan GPUs, about 4 days "
              "(128 epochs assumed, as the authors' code); includes their data loading and eval",
}
_KEYS = ("rows", "seeds", "s", "epochs", "pretrain_epochs", "calib_images", "records_dir",
         "overrides", "preset")


def load_preset(name_or_path: str) -> dict:
    """A preset by name (``presets/<name>.yaml``) or path; unknown keys or rows fail."""
    p = Path(name_or_path)
    if not p.suffix:
        p = PRESET_DIR / f"{name_or_path}.yaml"
    if not p.is_file():
        names = sorted(f.stem for f in PRESET_DIR.glob("*.yaml"))
        raise ValueError(f"preset: got {name_or_path!r}; allowed: {names} or a YAML path")
    d = yaml.safe_load(p.read_text()) or {}
    bad = sorted(set(d) - set(_KEYS))
    if bad:
        raise ValueError(f"preset key: got {bad}; allowed: {sorted(_KEYS)}")
    rows = d.get("rows", list(ROWS))
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"rows: got {unknown}; allowed: {list(ROWS)}")
    return {"rows": rows, "seeds": [0], "s": 2.0, "epochs": None, "pretrain_epochs": 10,
            "calib_images": 200, "overrides": {}, "preset": p.stem, **d}


def _base(cfg: TrainConfig) -> dict:
    """The fields of ``cfg`` that differ from TrainConfig's defaults, minus what each stage sets
    itself (architecture, epochs, seed, tag, weights)."""
    skip = {"model", "model_kwargs", "spec", "width_mult", "depth_div", "binary", "epochs", "seed",
            "tag", "save_weights", "init_weights"}
    default = TrainConfig()
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
            if f.name not in skip and getattr(cfg, f.name) != getattr(default, f.name)}


def row_plan(row: str, preset: dict) -> dict:
    """{'kind', 'spec', 'base', 'epochs', 'pretrain_epochs'} of one row under ``preset``."""
    name, kind = ROWS[row]
    cfg = recipe(name, **preset["overrides"])
    epochs = preset["epochs"] or cfg.epochs
    return {"row": row, "recipe": name, "kind": kind, "spec": cfg.build_spec(), "base": _base(cfg),
            "epochs": epochs, "pretrain_epochs": preset["pretrain_epochs"], "two_step": cfg.two_step,
            "n_train": (cfg.train_subset or IMAGENET_TRAIN_IMAGES - cfg.val_size)}


def _run_row(pl: dict, seed: int, preset: dict, lookup: bool = False) -> dict | None:
    """Train (or with ``lookup`` only read) one row for one seed; its final training record."""
    rd, tag = preset["records_dir"], f"table8:{pl['row']}"
    if pl["kind"] == "train":
        cfg = TrainConfig(spec=spec_to_dict(pl["spec"]), epochs=pl["epochs"], seed=seed, tag=tag,
                          **pl["base"])
        return D.read_run(cfg, rd) if lookup else D.run_config(cfg, rd)
    recs = D.dwr(pl["spec"], preset["s"], pretrain_epochs=pl["pretrain_epochs"], epochs=pl["epochs"],
                 seed=seed, records_dir=rd, train_kw=pl["base"], calib_images=preset["calib_images"],
                 tag=tag, lookup=lookup)
    return None if recs["train"] is None else {**recs["train"], "_prune": recs["prune"]}


def run(preset: dict) -> list[dict]:
    """Every row x seed of ``preset`` (finished stages are skipped); the final records."""
    out = []
    for seed in preset["seeds"]:
        for row in preset["rows"]:
            out.append(_run_row(row_plan(row, preset), int(seed), preset))
    return out


def _complexity(spec) -> dict:
    """OPs/params/acts under the paper's convention, and OPs with binary 1x1 shortcuts."""
    t = count(spec).totals
    tb = count(spec.replace(binary_shortcut=True)).totals if spec.binary else t
    return {"ops": t["ops"], "params": t["params"], "acts": t["acts"], "ops_binary_1x1": tb["ops"]}


def table_rows(preset: dict) -> list[dict]:
    """Paper's Table 8 number beside ours (mean over the seeds found) and the complexity."""
    from .pipeline import spec_of
    orig = {k: _complexity(row_plan(k, preset)["spec"]) for k in ("none/original", "react2/original")}
    rows = []
    for row in preset["rows"]:
        pl = row_plan(row, preset)
        recs = [r for r in (_run_row(pl, int(s), preset, lookup=True) for s in preset["seeds"])
                if r and r.get("status") == "finished"]
        pruned = bool(recs and recs[0].get("_prune"))
        spec = spec_of(recs[0]["_prune"]) if pruned else pl["spec"]
        c = _complexity(spec)
        budget = orig["react2/original" if row.startswith("react2") else "none/original"]
        method, reshaping, p_ops, p_top1, p_top5 = PAPER_TABLE8[row]
        acc = [r["metrics"]["final_test_acc"] for r in recs]
        rows.append({"row": row, "method": method, "reshaping": reshaping, "paper_top1": p_top1,
                     "paper_top5": p_top5, "paper_ops_1e8": p_ops,
                     "top1_mean": statistics.fmean(acc) if acc else None, "n_seeds": len(acc),
                     # a DWR row's widths come from pruning: until it ran, the row shows the
                     # net it starts from (the original), and says so
                     "widths": "/".join(map(str, spec.widths)) + (
                         "" if pruned or pl["kind"] != "dwr" else " (start; pruned widths once trained)"),
                     "ops_1e8": c["ops"] / 1e8,
                     "ops_ratio": c["ops"] / budget["ops"],
                     "ops_ratio_binary_1x1": c["ops_binary_1x1"] / budget["ops_binary_1x1"],
                     "params_M": c["params"] / 1e6, "acts_M": c["acts"] / 1e6,
                     "dataset_note": recs[0]["dataset"]["note"] if recs else None})
    return rows


def plan_rows(preset: dict, gpus: int, images_per_s: float | None = None) -> list[dict]:
    """Runs, epochs and estimated GPU-hours per row x seed. Time per image is assumed to scale
    with the backbone's multiply-accumulates (FLOPs + BOPs: a GPU trains binary convs as float
    convs) relative to Bi-Real-18, from ``images_per_s`` per GPU for Bi-Real-18."""
    ips = images_per_s or PUBLISHED_THROUGHPUT["images_per_s_per_gpu"]
    ref = count(row_plan("none/original", {**preset, "overrides": {}})["spec"]).totals
    ref_macs = ref["flops"] + ref["bops"]
    out = []
    for row in preset["rows"]:
        pl = row_plan(row, preset)
        stages = [("train", pl["spec"], pl["epochs"])]
        if pl["kind"] == "dwr":
            from bnnlib.reshape import widen
            # the retrained net is pruned back to the budget: costed like the original
            stages = [("pretrain (widened)", widen(pl["spec"], preset["s"]), pl["pretrain_epochs"]),
                      ("prune", None, 0), ("retrain", pl["spec"], pl["epochs"])]
        for stage, spec, ep in stages:
            if spec is None:
                out.append({"row": row, "stage": stage, "epochs": 0, "runs": len(preset["seeds"]),
                            "gpu_hours": 0.0, "wall_hours": 0.0})
                continue
            t = count(spec).totals
            rel = (t["flops"] + t["bops"]) / ref_macs
            gh = len(preset["seeds"]) * ep * pl["n_train"] * rel / ips / 3600
            out.append({"row": row, "stage": stage, "epochs": ep, "runs": len(preset["seeds"]),
                        "gpu_hours": gh, "wall_hours": gh / gpus})
    return out


def _print_plan(preset: dict, gpus: int, images_per_s: float | None) -> None:
    """Human-readable plan with the throughput's provenance."""
    rows = plan_rows(preset, gpus, images_per_s)
    for r in rows:
        print(f"{r['row']:20s} {r['stage']:20s} runs={r['runs']} epochs={r['epochs']:4d} "
              f"GPU-h={r['gpu_hours']:9.1f}  wall-h on {gpus} GPUs={r['wall_hours']:8.1f}")
    tot = sum(r["gpu_hours"] for r in rows)
    print(f"total: {tot:.0f} GPU-hours, {tot / gpus:.0f} h wall on {gpus} GPUs "
          f"({tot / gpus / 24:.1f} days; linear scaling over GPUs assumed)")
    if images_per_s:
        print(f"throughput: {images_per_s:g} images/s per GPU for Bi-Real-18, as given by --images-per-s")
    else:
        pt = PUBLISHED_THROUGHPUT
        print(f"throughput: UNMEASURED here (no GPU in this project so far). Assumed "
              f"{pt['images_per_s_per_gpu']:.0f} images/s per GPU for Bi-Real-18 on an {pt['gpu']}, "
              f"{pt['source']}. Measure yours (benchmarks/README.md) and pass --images-per-s.")


def _markdown(rows: list[dict]) -> str:
    """Table 8 rows as Markdown (``analysis.figures.to_markdown``; '-' where a value is missing)."""
    import pandas as pd

    from analysis.figures import to_markdown
    f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
    cols = {"method": ("method", None), "reshaping": ("reshaping", None), "widths": ("widths", None),
            "paper top-1": ("paper_top1", 1), "ours top-1": ("top1_mean", 2), "seeds": ("n_seeds", None),
            "OPs 1e8 (paper)": ("paper_ops_1e8", 2), "OPs 1e8 (ours)": ("ops_1e8", 3),
            "OPs ratio": ("ops_ratio", 3), "OPs ratio, binary 1x1": ("ops_ratio_binary_1x1", 3),
            "params M": ("params_M", 2), "acts M": ("acts_M", 3)}
    df = pd.DataFrame([{c: (str(r[k]) if d is None else f(r[k], d)) for c, (k, d) in cols.items()}
                       for r in rows], columns=list(cols))
    return to_markdown(df).rstrip("\n")


def main(argv=None) -> int:
    """CLI: plan | run | table (see the module docstring)."""
    ap = Parser(prog="python -m analysis.dwr.imagenet",
                description="DWR Table 8 (ImageNet): plan its GPU cost, run its rows, or print the "
                            "table beside the paper from the records.",
                example="python -m analysis.dwr.imagenet plan --preset table8 --gpus 8")
    ap.add_argument("command", choices=("plan", "run", "table"), help="plan, run or table")
    ap.add_argument("--preset", default="table8", help="a preset in analysis/dwr/presets/ or a YAML path")
    ap.add_argument("--gpus", type=int, default=8, help="plan: GPUs the runs share")
    ap.add_argument("--images-per-s", type=float, help="plan: measured Bi-Real-18 images/s per GPU")
    ap.add_argument("--records", help="records folder (overrides the preset's records_dir)")
    a = ap.parse_args(argv)
    try:
        preset = load_preset(a.preset)
        if a.records:
            preset["records_dir"] = a.records
        if a.gpus < 1:
            raise ValueError(f"gpus: got {a.gpus}; allowed: an int >= 1")
        if a.command == "plan":
            _print_plan(preset, a.gpus, a.images_per_s)
        elif a.command == "run":
            recs = run(preset)
            if os.environ.get("RANK", "0") != "0":  # under torchrun: rank 0 reports
                return 0
            print(f"{len(recs)} final records, {sum(r['status'] != 'finished' for r in recs if r)} not finished")
        else:
            print(_markdown(table_rows(preset)))
    except ValueError as e:
        return fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
