"""The studies still find their committed quick records (config hashes unchanged since the
records were written): every config of each quick preset maps to an existing record."""
from pathlib import Path

from analysis import notebooks as N

ROOT = Path(__file__).resolve().parents[1]


def test_gain_surface_quick_records_are_found():
    from analysis.gain_surface.study import load_preset, study_configs
    from analysis.sweep import config_hash
    params = load_preset("quick")
    params["records_dir"] = str(ROOT / params["records_dir"])  # 'auto' dataset looks there
    configs = study_configs(params)
    missing = [c.tag for c in configs
               if not (Path(params["records_dir"]) / config_hash(c) / "record.json").is_file()]
    assert len(configs) == 36 and not missing


def test_error_accumulation_quick_records_are_found():
    from analysis.error_accumulation.__main__ import configs_of
    from analysis.error_accumulation.study import config_hash
    values = N.resolve("error_accumulation", "quick")
    values["records_dir"] = str(ROOT / values["records_dir"])
    configs = configs_of(values)
    missing = [c for c in configs if not (Path(values["records_dir"]) / f"{config_hash(c)}.json").is_file()]
    assert len(configs) == 144 and not missing


def test_dwr_quick_records_are_found():
    from analysis.dwr.__main__ import study_params
    from analysis.dwr.study import find_record, jobs, record_index
    values = N.resolve("dwr_tables", "quick")
    values["records_dir"] = str(ROOT / values["records_dir"])
    p, index = study_params(values), record_index(values["records_dir"])
    found = [find_record(j, p, index) for j in jobs("table4", p)]
    assert len(found) == 14 and all(r is not None and r["status"] == "finished" for r in found)
