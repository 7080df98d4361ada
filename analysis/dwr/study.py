"""Reproduce the DWR paper's CIFAR-10 Tables 4-7: which runs each table needs, and running them.

``jobs(table, preset)`` lists the runs a table needs (one per row and seed); ``run_jobs`` runs
them (resumable, ``workers`` processes); ``tables.build_table`` reads ONLY records and puts our
mean +- std over seeds next to the paper's number, with OPs, params and activations from
``bnnlib.complexity``. The metric is the final-epoch test accuracy (the model at the end of
training; never chosen on the test set); the test accuracy at the best validation epoch is
given too.
"""
from __future__ import annotations

import json
from pathlib import Path

from bnnlib import records
from bnnlib.models import get_spec
from bnnlib.models.zoo import DWR_PAIRS
from bnnlib.reshape import naive_reshape, scale, widen
from bnnlib.spec import spec_to_dict
from bnnlib.train_config import TrainConfig

from analysis.sweep import REGIME_KEYS, SPEED_KEYS, precision_options

from . import pipeline as D
from .paper import PAPER

__all__ = ["TABLES", "PRESET_KEYS", "train_kw", "jobs", "run_jobs", "run_job", "TRAIN_KEYS",
           "find_record", "record_index", "plan_configs", "plan_estimate"]

TABLES = tuple(PAPER)
TRAIN_KEYS = ("dataset", "data_root", "train_subset", "val_size", "split_seed", "batch_size",
              "lr", "device", "threads", "eval_test", "eval_batch_size", "synthetic_train",
              "synthetic_test", "progress")
# speed and regime options (analysis.sweep): TrainConfig fields too, passed only when they
# differ from TrainConfig's defaults, so records made before they existed still match
PRESET_KEYS = ("seeds", "epochs", "pretrain_epochs", "table5_pretrain", "calib_images",
               "workers", "pack", "fp_options", "bnn_options") + TRAIN_KEYS + SPEED_KEYS + REGIME_KEYS


def train_kw(preset: dict, binary: bool | None = None) -> dict:
    """The TrainConfig fields of the preset's runs: those shared by all (``binary`` None), or
    with the FP (False) or BNN (True) runs' own ``fp_options`` / ``bnn_options`` over them."""
    bad = sorted(set(preset) - set(PRESET_KEYS))
    if bad:
        raise ValueError(f"preset: got unknown keys {bad}; allowed: {sorted(PRESET_KEYS)}")
    own = {q: precision_options(preset, q) for q in (False, True)}  # validates both
    p = {**preset, **own[binary]} if binary is not None else preset
    default = TrainConfig.__dataclass_fields__
    speed = {k: p[k] for k in SPEED_KEYS + REGIME_KEYS
             if p.get(k) is not None and p[k] != default[k].default}
    return {**{k: p[k] for k in TRAIN_KEYS if k in p}, **speed}


def _binary(job: dict) -> bool:
    """Whether ``job`` trains binary nets (every DWR chain does; a plain row as its spec says)."""
    return job["kind"] == "dwr" or bool(job["spec"].binary)


def _plain(spec, label=None):
    return {"kind": "train", "spec": spec, "label": label}


def _dwr(original, s, start=None, pretrain=None):
    return {"kind": "dwr", "original": original, "s": s, "start": start, "pretrain": pretrain}


def _plan_table4(p):
    r20 = get_spec("resnet20")
    return {"fp": ("resnet20/fp", _plain(r20.replace(binary=False))),
            "original": ("resnet20/original", _plain(r20)),
            "original_plus1": ("resnet20/original_plus1", _plain(r20.replace(align_width=64))),
            "naive_1.5": ("resnet20/naive_1.5", _plain(naive_reshape(r20, 1.5))),
            "naive_3": ("resnet20/naive_3", _plain(naive_reshape(r20, 3))),
            "dwr_1.5": ("resnet20/dwr_1.5", _dwr(r20, 1.5)),
            "dwr_3": ("resnet20/dwr_3", _dwr(r20, 3.0))}


def _plan_table5(p):
    r20r = get_spec("resnet20_react")
    out = {"fp": ("resnet20/fp", _plain(get_spec("resnet20").replace(binary=False))),
           "original": ("resnet20_react/original", _plain(r20r))}
    pre = list(p.get("table5_pretrain", [5, 10, 15]))
    for key, e in zip(("dwr_pre5", "dwr_pre10", "dwr_pre15"), pre):
        out[key] = (f"resnet20_react/dwr_3_pre{e}", _dwr(r20r, 3.0, pretrain=e))
    out["dwr_full"] = (f"resnet20_react/dwr_3_pre{p['epochs']}", _dwr(r20r, 3.0, pretrain=p["epochs"]))
    return out


def _plan_table6(p):
    out = {}
    for name in ("vgg11", "resnet20", "resnet18"):
        spec = get_spec(name)
        out[f"{name}/fp"] = (f"{name}/fp", _plain(spec.replace(binary=False)))
        out[f"{name}/original"] = (f"{name}/original", _plain(spec))
        out[f"{name}/dwr"] = (f"{name}/dwr_{DWR_PAIRS[name][1]:g}", _dwr(spec, DWR_PAIRS[name][1]))
        out[f"{name}/dwr_authors"] = (f"{name}/dwr_authors", _plain(get_spec(DWR_PAIRS[name][0]), DWR_PAIRS[name][0]))
    return out


def _plan_table7(p):
    vs = get_spec("vgg_small")
    minus1 = vs.replace(stages=vs.stages[:-1] + (vs.stages[-1][:-1],))
    # Original-1 is under budget after removing its last conv: widen it 1.5x, then prune back.
    return {"fp": ("vgg_small/fp", _plain(vs.replace(binary=False))),
            "original": ("vgg_small/original", _plain(vs)),
            "original_minus1": ("vgg_small/original_minus1",
                                _dwr(vs, 1.0, start=scale(minus1, 1.5))),
            "original_plus1": ("vgg_small/original_plus1",
                               _dwr(vs, 1.0, start=vs.replace(align_width=512))),
            "dwr_authors": ("vgg_small/dwr_authors", _plain(get_spec("vgg_small_dwr")))}


_PLANS = {"table4": _plan_table4, "table5": _plan_table5, "table6": _plan_table6,
          "table7": _plan_table7}


def _check_table(table):
    if table not in _PLANS:
        raise ValueError(f"table: got {table!r}; allowed: {list(_PLANS)}")


def jobs(table: str, preset: dict) -> list[dict]:
    """One job per (row we reproduce, seed) of ``table`` under ``preset``."""
    _check_table(table)
    train_kw(preset)
    out = []
    for key, (row_id, job) in _PLANS[table](preset).items():
        for seed in preset["seeds"]:
            out.append({**job, "table": table, "key": key, "row_id": row_id, "seed": int(seed)})
    return out


def run_job(job: dict, preset: dict, records_dir: str | Path, lookup: bool = False) -> dict | None:
    """Run (or, with ``lookup``, only read) one job; returns its final training record."""
    kw, tag = train_kw(preset, _binary(job)), f"dwr:{job['row_id']}"
    if job["kind"] == "train":
        cfg = TrainConfig(spec=spec_to_dict(job["spec"]), epochs=preset["epochs"],
                          seed=job["seed"], tag=tag, **kw)
        return D.read_run(cfg, records_dir) if lookup else D.run_config(cfg, records_dir)
    recs = D.dwr(job["original"], job["s"], pretrain_epochs=job["pretrain"] or
                 preset["pretrain_epochs"], epochs=preset["epochs"], seed=job["seed"],
                 records_dir=records_dir, train_kw=kw, calib_images=preset["calib_images"],
                 start_spec=job["start"], tag=tag, lookup=lookup)
    return None if recs["train"] is None else {**recs["train"], "_prune": recs["prune"]}


def _norm(x):
    return json.loads(json.dumps(x))


def record_index(records_dir: str | Path) -> dict:
    """Every training and prune record under ``records_dir``, indexed for ``find_record``."""
    runs, prunes = D.load_stage_records(records_dir)
    return {"runs": runs, "by_hash": {r["config_hash"]: r for r in runs},
            "prunes": {p["prune_hash"]: p for p in prunes}}


def _matches(rec, expect, tag_ok) -> bool:
    c = rec.get("config", {})
    return tag_ok(c.get("tag", "")) and all(c.get(k) == v for k, v in expect.items())


def find_record(job: dict, preset: dict, index: dict) -> dict | None:
    """The final training record of ``job`` found by its stored config (not by re-hashing a
    config, so records stay readable when TrainConfig gains fields)."""
    tag = f"dwr:{job['row_id']}"
    expect = _norm({**train_kw(preset, _binary(job)), "epochs": preset["epochs"], "seed": job["seed"]})
    if job["kind"] == "train":
        expect["spec"] = _norm(spec_to_dict(job["spec"]))
        hits = [r for r in index["runs"] if _matches(r, expect, lambda t: t == tag)]
        return hits[-1] if hits else None
    start = job["start"] or widen(job["original"], job["s"])
    pre_epochs = job["pretrain"] or preset["pretrain_epochs"]
    for r in index["runs"]:
        if not _matches(r, expect, lambda t: t.startswith(f"{tag}|dwr-train|prune=")):
            continue
        pr = index["prunes"].get(r["config"]["tag"].rsplit("=", 1)[1])
        pre = pr and index["by_hash"].get(pr["key"]["pretrain_hash"])
        if pre and pre["config"]["epochs"] == pre_epochs and pre["config"]["spec"] == _norm(
                spec_to_dict(start)) and pr["key"]["calib_images"] == preset["calib_images"]:
            return {**r, "_prune": pr}
    return None


def _chain_args(job: dict, preset: dict, kw: dict) -> dict:
    """Keyword arguments of ``pipeline.dwr`` for a DWR job."""
    return {"pretrain_epochs": job["pretrain"] or preset["pretrain_epochs"], "epochs": preset["epochs"],
            "seed": job["seed"], "train_kw": kw, "calib_images": preset["calib_images"],
            "start_spec": job["start"], "tag": f"dwr:{job['row_id']}"}


def _stage_configs(job: dict, preset: dict, records_dir) -> list[TrainConfig]:
    """What the first sweep stage trains for ``job``: the run itself, or a chain's
    pre-training; a chain whose pre-training is done (finished, weights saved) is pruned here
    and its final training joins the first stage, so no worker waits for other jobs' runs."""
    kw = train_kw(preset, _binary(job))
    if job["kind"] == "train":
        return [TrainConfig(spec=spec_to_dict(job["spec"]), epochs=preset["epochs"], seed=job["seed"],
                            tag=f"dwr:{job['row_id']}", **kw)]
    a = _chain_args(job, preset, kw)
    pre = D.pretrain_config(job["original"], job["s"], a["pretrain_epochs"], a["seed"], kw,
                            a["start_spec"], a["tag"])
    budget = D.budget_for(job["original"], kw)
    if (D.existing_prune(records_dir, pre, budget, a["calib_images"], a["seed"])
            or D.done_run(pre, records_dir, need_weights=True)):
        return [D.dwr(job["original"], job["s"], records_dir=records_dir, train_final=False,
                      **a)["final_config"]]
    return [pre]


def run_jobs(job_list: list[dict], preset: dict, records_dir: str | Path, workers: int | None = None,
             executor: str | None = None, executor_options: dict | None = None,
             shard: str | None = None) -> list[tuple]:
    """Run every job (skipping finished ones) through the sweep executors, in three stages:
    plain runs and the chains' pre-trainings, then pruning (here: light, needs the pre-trained
    weights), then the chains' final trainings. ``shard`` 'k/N' takes every N-th job (whole
    chains). Returns (row_id, seed, status, final test acc) per job of this shard."""
    from analysis.sweep import parse_shard, run_sweep
    # seed by seed (a cut-short run still has whole tables for the first seeds); chains first
    order = sorted(job_list, key=lambda j: (j["seed"], j["kind"] != "dwr"))
    if shard is not None:
        k, n = parse_shard(shard)
        order = [j for i, j in enumerate(order) if i % n == k]
    pack = int(preset.get("pack") or 1)  # seeds of one net trained together (bnnlib.packed)
    executor = executor or ("packed" if pack > 1 else "local")
    if executor_options is None and executor == "packed":
        executor_options = {"pack_size": pack}
    runs, run = Path(records_dir) / "runs", dict(executor=executor, workers=workers,
                                                 executor_options=executor_options)
    first = [c for j in order for c in _stage_configs(j, preset, records_dir)]
    if first:
        run_sweep(first, runs, **run)
    kw, finals, queued = train_kw(preset, True), [], {records.config_hash(c) for c in first}
    for j in order:  # the chains pre-trained in the first stage: prune, then train
        if j["kind"] == "dwr":
            out = D.dwr(j["original"], j["s"], records_dir=records_dir, train_final=False,
                        **_chain_args(j, preset, kw))
            if records.config_hash(out["final_config"]) not in queued:
                finals.append(out["final_config"])
    if finals:
        run_sweep(finals, runs, **run)
    out = []
    for j in order:
        rec = run_job(j, preset, records_dir, lookup=True)
        out.append((j["row_id"], j["seed"], rec["status"] if rec else "missing",
                    (rec or {}).get("metrics", {}).get("final_test_acc")))
    return out


def plan_configs(job_list: list[dict], preset: dict) -> list[TrainConfig]:
    """Every training run of ``job_list``: plain runs, and per DWR chain its pre-training and
    its final training. The final net is known only after pruning; it is costed as the
    original net (the OPs budget it is pruned to)."""
    out = []
    for j in job_list:
        kw = train_kw(preset, _binary(j))
        if j["kind"] == "train":
            out += _stage_configs(j, preset, "/nonexistent")
            continue
        a = _chain_args(j, preset, kw)
        out.append(D.pretrain_config(j["original"], j["s"], a["pretrain_epochs"], a["seed"], kw,
                                     a["start_spec"], a["tag"]))
        out.append(TrainConfig(spec=spec_to_dict(j["original"]), epochs=a["epochs"], seed=a["seed"],
                               tag=f"{a['tag']}|dwr-train|planned", **kw))
    return out


def plan_estimate(tables, preset: dict, gpus: int = 1) -> dict:
    """``analysis.cost.estimate`` of every table's runs (a row shared by tables runs once)."""
    from analysis import cost
    from analysis.sweep import config_hash
    cfgs = {config_hash(c): c for t in tables for c in plan_configs(jobs(t, preset), preset)}
    return cost.estimate(list(cfgs.values()), pack=int(preset.get("pack") or 1), gpus=gpus)
