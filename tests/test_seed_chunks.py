"""``--seeds``: the study CLIs run a long preset in chunks of its seeds, with the records' hashes
unchanged, and refuse seeds the preset does not have (one line, exit 2)."""
import pytest

from analysis import sweep


def test_restrict_seeds_narrows_in_preset_order_and_refuses_foreign_seeds():
    p = {"seeds": [0, 1, 2], "epochs": 3}
    assert sweep.restrict_seeds(p, None) is p
    assert sweep.restrict_seeds(p, [2, 0]) == {"seeds": [0, 2], "epochs": 3}
    assert p["seeds"] == [0, 1, 2]  # the preset dict is not changed
    for bad in ([3], [0, 7], []):
        with pytest.raises(ValueError, match=r"seeds: got .*allowed: a non-empty subset of the preset's \[0, 1, 2\]"):
            sweep.restrict_seeds(p, bad)


def test_gain_surface_chunk_is_the_preset_runs_of_that_seed(tmp_path, capsys, monkeypatch):
    from analysis.gain_surface import study as gs
    from analysis.gain_surface.__main__ import load_preset, main
    spec = gs.shape_spec("resnet20", 1, 0.5, 0.5).replace(binary=False)  # one shape: no OPs solving
    monkeypatch.setattr(gs, "make_grid", lambda *a, **k: [gs.Shape(depth=1, width_mult=0.5, spec=spec, precisions=["fp", "bnn"])])
    full = gs.study_configs(load_preset("quick"))
    chunk = gs.study_configs(sweep.restrict_seeds(load_preset("quick"), [1]))
    assert len(full) == 4 and len(chunk) == 2 and {c.seed for c in chunk} == {1}
    assert {sweep.config_hash(c) for c in chunk} == {sweep.config_hash(c) for c in full if c.seed == 1}
    assert main(["plan", "--preset", "quick", "--records", str(tmp_path), "--seeds", "1"]) == 0
    assert "2 runs" in capsys.readouterr().out
    assert main(["plan", "--preset", "quick", "--records", str(tmp_path), "--seeds", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: seeds: got [9]") and err.count("\n") == 1


def test_dwr_and_error_accumulation_plans_take_a_seed_chunk(tmp_path, capsys):
    from analysis.dwr.__main__ import main as dwr_main
    from analysis.error_accumulation.__main__ import main as ea_main
    assert dwr_main(["plan", "--preset", "cpu", "--records", str(tmp_path)]) == 0
    assert dwr_main(["plan", "--preset", "cpu", "--records", str(tmp_path), "--seeds", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"table4: 21 jobs, 0 with records in {tmp_path}", f"table4: 7 jobs, 0 with records in {tmp_path}"]
    assert ea_main(["plan", "--preset", "cpu_trained", "--records", str(tmp_path), "--seeds", "1"]) == 0
    assert capsys.readouterr().out.startswith("12 configs; 0 measured")  # 24 in the whole preset
    assert ea_main(["plan", "--preset", "cpu_trained", "--records", str(tmp_path), "--seeds", "2"]) == 2
    assert capsys.readouterr().err.startswith("error: seeds: got [2]")


def test_error_accumulation_run_passes_workers_to_the_sweep(tmp_path, monkeypatch):
    from analysis.error_accumulation import __main__ as EM
    seen = {}
    monkeypatch.setattr(EM, "run_study", lambda configs, rdir, **kw: seen.update(n=len(configs), **kw))
    assert EM.main(["run", "--preset", "cpu_trained", "--records", str(tmp_path), "--seeds", "0",
                    "--workers", "2"]) == 0
    assert seen == {"n": 12, "device": "cpu", "workers": 2}
