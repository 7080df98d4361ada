"""benchmarks/gpu_check.py: the CPU dry-run path writes its JSON + Markdown report."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402


def test_dry_run_writes_report_with_resume_check(tmp_path, capsys):
    rc = gpu_check.main(["--dry-run", "--steps", "env,data,resume", "--out", str(tmp_path)])
    js, md = sorted(tmp_path.glob("*.json")), sorted(tmp_path.glob("*.md"))
    assert len(js) == len(md) == 1 and "_dryrun_" in js[0].name
    rep = json.loads(js[0].read_text())
    assert rep["dry_run"] and set(rep["steps"]) == {"env", "data", "resume"}
    assert rep["steps"]["resume"]["result"]["identical"] is True and rc == 0
    assert "bit-identical after kill + resume on cpu: True" in md[0].read_text()


def test_bad_step_is_refused_in_one_line(capsys):
    assert gpu_check.main(["--steps", "env,warp"]) == 2
    assert capsys.readouterr().err.startswith("error: steps: got ['warp']")


def test_markdown_of_a_failed_step_names_the_error():
    rep = {"created_utc": "t", "dry_run": True, "total_s": 1.0,
           "steps": {"smoke": {"status": "FAILED", "seconds": 1.0, "error": "ValueError: x", "result": None}}}
    assert "## smoke: FAILED" in gpu_check.markdown(rep) and "ValueError: x" in gpu_check.markdown(rep)
    pytest.importorskip("torch")
