"""analysis.spent: the measured cost of a preset's records."""
import json

import pytest

from analysis import spent as S


def _write(path, rec):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


def test_spent_sums_wall_time_per_study_and_counts_resumed_runs_whole(tmp_path):
    cpu = {"type": "cpu", "name": "AMD EPYC", "threads": 1}
    # a resumed run: total_s holds only the last segment, the epoch history every epoch
    _write(tmp_path / "cpu/regime/a/record.json",
           {"status": "finished", "device": cpu, "timings": {"total_s": 100.0},
            "metrics": {"epochs": [{"time_s": 1000.0}, {"time_s": 800.0}]}})
    _write(tmp_path / "cpu/regime/b/record.json",
           {"status": "diverged", "device": cpu, "timings": {"total_s": 1800.0}, "metrics": {}})
    _write(tmp_path / "cpu/error_accumulation/c.json", {"status": "finished", "device": "cpu",
                                                        "timings": {"total_s": 36.0}})
    _write(tmp_path / "cpu/dwr/prune/p.json", {"prune_hash": "x"})  # no timing: not a run
    df = S.spent("cpu", tmp_path).set_index("study")
    assert list(df.index) == ["error_accumulation", "regime"]
    assert df.loc["regime", "hours"] == pytest.approx(1.0) and df.loc["regime", "records"] == 2
    assert df.loc["regime", "finished"] == 1 and df.loc["regime", "machines"] == "AMD EPYC"
    assert df.loc["error_accumulation", "hours"] == pytest.approx(0.01)


def test_spent_refuses_a_preset_without_records(tmp_path, capsys):
    (tmp_path / "quick").mkdir()
    with pytest.raises(ValueError, match=r"^preset: got 'cpu' .*allowed: \['quick'\]"):
        S.spent("cpu", tmp_path)
    assert S.main(["--preset", "cpu", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: preset: got 'cpu'")


def test_spent_by_seed_splits_a_study_and_keeps_its_total(tmp_path, capsys):
    for name, seed, secs in (("a", 0, 3600.0), ("b", 1, 1800.0), ("c", None, 360.0)):
        rec = {"status": "finished", "device": "cpu", "timings": {"total_s": secs}}
        if seed is not None:
            rec["seed"] = seed
        _write(tmp_path / f"cpu/dwr/runs/{name}/record.json", rec)
    by = S.spent("cpu", tmp_path, by_seed=True).set_index("seed")
    assert list(by.index) == ["-", "0", "1"]
    assert by.loc["0", "hours"] == pytest.approx(1.0) and by.loc["1", "hours"] == pytest.approx(0.5)
    assert by["hours"].sum() == pytest.approx(S.spent("cpu", tmp_path)["hours"].item())
    assert S.main(["--preset", "cpu", "--results", str(tmp_path), "--by-seed"]) == 0
    assert "| dwr | 0 | 1 | 1 | 1 |" in capsys.readouterr().out
