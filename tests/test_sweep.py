"""analysis.sweep: skip finished, resume interrupted, isolate failures, YAML CLI."""
import pytest

from analysis import sweep
from bnnlib.train import StopTraining, TrainConfig, train

TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic", device="cpu",
            synthetic_train=288, synthetic_test=60, val_size=32, batch_size=64, epochs=2,
            threads=1)


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def test_failure_isolated_divergence_recorded_then_skip(tmp_path, monkeypatch):
    configs = [cfg(seed=0), cfg(init_weights=str(tmp_path / "missing.pt")),
               cfg(binary=False, lr=1e30), cfg(seed=1), cfg(seed=0, threads=2)]
    recs = sweep.run_sweep(configs, tmp_path)
    assert [r["status"] for r in recs] == ["finished", "failed", "diverged", "finished", "finished"]
    assert recs[4] == recs[0]  # same experiment (threads is operational): one folder, one run
    assert "FileNotFoundError" in recs[1]["traceback"] and recs[1]["config_hash"]
    assert (tmp_path / sweep.config_hash(configs[1]) / "record.json").is_file()
    assert sweep.status(configs, tmp_path) == {"finished": 3, "diverged": 1, "failed": 1, "pending": 0}
    calls = []
    monkeypatch.setattr("bnnlib.train.train",
                        lambda c, d, resume=False: calls.append(c) or train(c, d, resume))
    again = sweep.run_sweep(configs, tmp_path)
    assert calls == [configs[1]]  # only the failed run is retried
    assert [r["created_utc"] for r in again][0] == recs[0]["created_utc"]
    assert len(sweep.load_records(tmp_path)) == 4


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    c = cfg(seed=3)
    ref = train(c, tmp_path / "ref")
    run_dir = tmp_path / "sweep" / sweep.config_hash(c)
    with pytest.raises(StopTraining):
        train(c.replace(stop_after_epoch=1), run_dir)
    (rec,) = sweep.run_sweep([c], tmp_path / "sweep")
    assert rec["timings"]["resumed"] and rec["weights_sha256"] == ref["weights_sha256"]


@pytest.mark.slow  # two spawned interpreters importing torch: ~20 s on 2 busy cores
def test_parallel_local_processes_match_serial(tmp_path):
    configs = [cfg(seed=s, epochs=1) for s in (0, 1)]
    par = sweep.run_sweep(configs, tmp_path / "p", workers=2)
    ser = sweep.run_sweep(configs, tmp_path / "s")
    assert [r["weights_sha256"] for r in par] == [r["weights_sha256"] for r in ser]


def test_expand_grid_and_bad_specs():
    spec = {"records_dir": "x", "base": {**TINY}, "runs": [{"binary": True}, {"binary": False}],
            "grid": {"seed": [0, 1, 2]}}
    cs = sweep.expand(spec)
    assert len(cs) == 6 and {c.seed for c in cs} == {0, 1, 2} and cs[3].binary is False
    with pytest.raises(ValueError, match="sweep spec key"):
        sweep.expand({"bsae": {}})
    with pytest.raises(ValueError, match="model"):
        sweep.expand({"base": {"model": "nope"}})
    with pytest.raises(ValueError, match="executor"):
        sweep.run_sweep([], "x", executor="ray")
    with pytest.raises(ValueError, match="workers"):
        sweep.run_sweep([], "x", workers=0)


def test_cli_run_status_table_and_exit_code(tmp_path, capsys):
    base = ", ".join(f"{k}: {v}" for k, v in TINY.items())
    (tmp_path / "s.yaml").write_text(
        f"records_dir: recs\nbase: {{{base}, epochs: 1}}\n"
        "runs: [{seed: 0}, {init_weights: /nonexistent/w.pt}]\n")
    assert sweep.main(["run", str(tmp_path / "s.yaml")]) == 1  # one failed run -> non-zero
    assert "'failed': 1" in capsys.readouterr().out
    assert sweep.main(["status", str(tmp_path / "s.yaml")]) == 0
    assert "'finished': 1" in capsys.readouterr().out
    assert sweep.main(["table", str(tmp_path / "recs"), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "failed" in out
    assert (tmp_path / "t.csv").read_text().count("\n") == 3
    df = sweep.records_table(sweep.load_records(tmp_path / "recs"))
    assert sorted(df["status"]) == ["failed", "finished"]


def test_submitit_missing_gives_clear_error(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name == "submitit":
            raise ImportError("no submitit")
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ValueError, match="bnn-dwr\\[cluster\\]"):
        sweep.run_sweep([cfg()], tmp_path, executor="submitit")


def test_packed_executor_writes_one_record_per_run_and_skips(tmp_path):
    configs = [cfg(seed=s, epochs=1) for s in (0, 1)]
    recs = sweep.run_sweep(configs, tmp_path, executor="packed")
    assert [r["status"] for r in recs] == ["finished", "finished"]
    assert recs[0]["timings"]["packed"]["k"] == 2
    assert (tmp_path / sweep.config_hash(configs[1]) / "record.json").is_file()
    assert sweep.run_sweep(configs, tmp_path, executor="packed") == recs


def test_submitit_executor_in_debug_mode(tmp_path):
    pytest.importorskip("submitit")
    configs = [cfg(seed=0, epochs=1), cfg(init_weights=str(tmp_path / "missing.pt"), epochs=1)]
    recs = sweep.run_sweep(configs, tmp_path, executor="submitit",
                           executor_options={"cluster": "debug"})
    assert [r["status"] for r in recs] == ["finished", "failed"]
    assert (tmp_path / "_submitit").is_dir()
