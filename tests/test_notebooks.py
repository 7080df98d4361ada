"""analysis.notebooks: committed notebooks are clean, bad parameters fail before any kernel
starts, and notebooks run through papermill write the numbers we expect."""
import hashlib
import json
import math
import shutil
import sys

import nbformat
import numpy as np
import pandas as pd
import pytest

from analysis import notebooks as N
from analysis.figures import build_gallery, load_manifests
from analysis.nbparams import check_committed, parse_parameters

NOTEBOOKS = N.list_notebooks()


def test_there_are_notebooks():
    assert "complexity" in NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean(name):
    path = N.notebook_path(name)
    assert check_committed(path) == []
    params = parse_parameters(path)
    assert "figures_dir" in params and params["figures_dir"].default == "figures"
    assert "/work/" not in path.read_text() and "/home/" not in path.read_text()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_presets_validate(name):
    presets = N.list_presets(name)
    assert "quick" in presets
    for preset in presets:
        values = N.resolve(name, preset)
        assert set(values) == set(parse_parameters(N.notebook_path(name)))


@pytest.mark.parametrize("args,match", [
    (["-p", "table8", '"false"'], "'table8': got 'false' (str)"),
    (["-p", "tabel8", "false"], "['tabel8'] in -p overrides: unknown"),
    (["-p", "factors", "3"], "'factors': got 3 (int); allowed: a list of numbers in (1, 16]"),
    (["-p", "factors", "[0.5]"], "'factors': got [0.5]"),
    (["-p", "precisions", "[fp, int8]"], "from ['fp', 'bnn']"),
    (["--preset", "huge"], "preset: got 'huge'"),
])
def test_cli_rejects_bad_parameters(capsys, tmp_path, monkeypatch, args, match):
    monkeypatch.setattr(N, "EXEC_DIR", tmp_path / "exec")
    assert N.main(["run", "complexity", *args]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "exec").exists()  # nothing ran


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_defaults_are_the_quick_preset(name):
    """Run All in JupyterLab (no preset) does what `make figures` does: same records, same outputs."""
    params = parse_parameters(N.notebook_path(name))
    defaults = {k: p.default for k, p in params.items()}
    quick = N.resolve(name, "quick", {"preset": "quick"})
    operational = {"device"}  # not part of any record's identity (bnnlib.records.HASH_EXCLUDED)
    assert {k: v for k, v in defaults.items() if k not in operational} == \
        {k: v for k, v in quick.items() if k not in operational}


def test_notebook_started_in_notebooks_folder_uses_repo_paths(tmp_path):
    """JupyterLab starts kernels in notebooks/; relative records_dir and figures_dir must still
    mean the repository's: the committed records are found (nothing retrains) and outputs land
    under the repo's figures/, not notebooks/figures/."""
    rel = "figures/_test_lab_cwd"
    try:
        N.run_notebook("gain_surface", None, {"train": False, "n_boot": 5, "figures_dir": rel},
                       timeout=600, exec_dir=tmp_path, cwd=N.NB_DIR)
        out = N.REPO / rel / "quick" / "gain_surface"
        manifest = json.loads((out / "gain_surface_heatmaps.json").read_text())
        assert len(manifest["records"]) == 36  # the committed quick records
        assert manifest["records"][0].startswith("results/quick/gain_surface/")
        assert (manifest["notebook"], manifest["preset"]) == ("gain_surface", "quick")
        assert not (N.NB_DIR / "figures").exists() and not (N.NB_DIR / rel).exists()
        executed = nbformat.read(tmp_path / "gain_surface.defaults.ipynb", as_version=4)
        images = [o for c in executed.cells for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {})]
        assert len(images) >= 3  # heat maps, iso-OPs curves, surfaces shown inline
    finally:
        shutil.rmtree(N.REPO / rel, ignore_errors=True)


def test_cli_check_merges_defaults_preset_overrides(capsys):
    assert N.main(["run", "complexity", "--preset", "quick", "-p", "table8", "false",
                   "--figures", "out", "--check"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["table8"] is False and values["figures_dir"] == "out"
    assert values["models"] == N.load_preset("complexity", "quick")["models"]


WITH_TEST_PRESET = N.notebooks_with_preset("test")
STUDY = {"dwr_tables": "dwr"}  # notebook -> study package (and figures/results folder)
_RUNS: dict = {}


@pytest.fixture(scope="session")
def test_run(tmp_path_factory):
    """Run a notebook once per session with its ``test`` preset; returns its output folder."""

    def run(name):
        if name not in _RUNS:
            root = tmp_path_factory.mktemp(f"nb-{name}")
            out = N.run_notebook(name, "test", timeout=600, records=str(root / "records"),
                                 figures=str(root / "figs"), exec_dir=root / "exec")
            assert out == root / "exec" / f"{name}.test.ipynb" and out.is_file()
            _RUNS[name] = root / "figs"
        return _RUNS[name]

    return run


@pytest.mark.parametrize("name", WITH_TEST_PRESET)
def test_notebook_writes_figures_with_numbers(test_run, name):
    figs = test_run(name)
    manifests = load_manifests(figs)
    assert manifests, f"{name} wrote no figure or table"
    for m in manifests:
        assert (m["notebook"], m["preset"]) == (name, "test")
        assert m["dir"] == f"test/{STUDY.get(name, name)}"  # figures_dir/PRESET/STUDY
        for fname, sha in m["files"].items():
            assert hashlib.sha256((figs / m["dir"] / fname).read_bytes()).hexdigest() == sha
        data = pd.read_csv(figs / m["dir"] / f"{m['name']}.csv")
        numbers = data.select_dtypes("number").to_numpy()
        assert len(data) and numbers.size and np.isfinite(numbers).any(), m["name"]
    gallery = build_gallery(figs).read_text()
    assert all(f"`{m['name']}`" in gallery for m in manifests)


def test_complexity_notebook_numbers(test_run):
    figs = test_run("complexity") / "test" / "complexity"
    long = pd.read_csv(figs / "complexity_scaling.csv")
    assert set(long["model"]) == {"resnet20"} and set(long["precision"]) == {"fp"}
    body = long[long["scope"] == "body"].set_index(["transform", "quantity"])["measured"]
    assert body["naive", "acts"] == pytest.approx(1 / math.sqrt(3), rel=0.02)  # Table 3
    assert body["width", "ops"] == pytest.approx(3.0, rel=0.03)  # Table 1, width row
    assert body["width", "acts"] == pytest.approx(math.sqrt(3), rel=0.02)
    assert body["depth", "acts"] == pytest.approx(3.0, rel=1e-9)
    t8 = pd.read_csv(figs / "complexity_table8.csv", keep_default_na=False)
    t8 = t8.set_index(["method", "reshaping"])
    assert t8.loc[("FP", "Original"), "ours_ops_1e8"] == pytest.approx(18.3, rel=0.01)  # paper
    assert t8.loc[("None", "Original"), "ours_ops_1e8"] == pytest.approx(1.63, rel=0.01)  # Bi-Real
    assert t8.loc[("None", "Original"), "paper_ops_1e8"] == 1.74
    assert not (figs / "complexity_dwr.csv").exists()  # dwr_pairs=false was honoured


TOY = """from analysis.figures import save_table
import pandas as pd
save_table(pd.DataFrame({"i": list(range(n))}), "toy_table", figures_dir, {"title": "Toy"})"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A one-notebook notebooks/ folder with a quick preset."""
    nbdir = tmp_path / "notebooks"
    (nbdir / "presets" / "toy").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        f'n: int = 1  # [0, 5] rows\nfail: bool = False\nfigures_dir: str = "{tmp_path / "figs"}"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(TOY),
                nbformat.v4.new_code_cell("assert not fail, 'asked to fail'"),
                nbformat.v4.new_code_cell("import sys; print(sys.executable)")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, nbdir / "toy.ipynb")
    (nbdir / "presets" / "toy" / "quick.yaml").write_text("n: 2\n")
    monkeypatch.setattr(N, "NB_DIR", nbdir)
    monkeypatch.setattr(N, "PRESET_DIR", nbdir / "presets")
    monkeypatch.setattr(N, "EXEC_DIR", nbdir / "_executed")
    return tmp_path


def test_run_all_runs_the_companion_presets(toy):
    """``run-all --preset quick`` also runs a notebook's ``quick_*`` presets (as ``cpu`` runs
    ``cpu_long``), but not when --records points them all at one folder."""
    (toy / "notebooks" / "presets" / "toy" / "quick_more.yaml").write_text("n: 3\n")
    (toy / "notebooks" / "presets" / "toy" / "quickly.yaml").write_text("n: 4\n")  # not a companion
    assert N.preset_runs("quick") == [("toy", "quick"), ("toy", "quick_more")]
    assert N.preset_runs("quick", companions=False) == [("toy", "quick")]
    assert N.run_all("quick", timeout=120, figures=str(toy / "figs")) == []
    assert {p.name for p in (toy / "notebooks" / "_executed").glob("*.ipynb")} == {
        "toy.quick.ipynb", "toy.quick_more.ipynb"}
    assert pd.read_csv(toy / "figs" / "toy_table.csv")["i"].tolist() == [0, 1, 2]  # ran second


def test_companion_sharing_the_records_dir_is_not_replotted(toy):
    """A companion writing into its base preset's records folder (error_accumulation's
    cpu_trained beside cpu) would re-plot the same pooled records under a second name: left out.
    One with a folder of its own (gain_surface's cpu_long) still runs."""
    d = toy / "notebooks" / "presets" / "toy"
    (d / "quick.yaml").write_text("n: 2\nrecords_dir: results/a\n")
    (d / "quick_same.yaml").write_text("n: 3\nrecords_dir: results/a\n")
    (d / "quick_own.yaml").write_text("n: 4\nrecords_dir: results/b\n")
    assert N.preset_runs("quick") == [("toy", "quick"), ("toy", "quick_own")]


def test_explicit_run_of_a_replot_only_companion_plots_under_its_base(toy, capsys):
    """``run error_accumulation --preset cpu_trained`` re-plots records that ``cpu``'s notebook
    already plots: it runs the base preset instead (no second figure folder), unless told to
    train, or when the companion has a records folder of its own."""
    nb_path = toy / "notebooks" / "toy.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source += '\nrecords_dir: str = ""\ntrain: bool = True'
    nbformat.write(nb, nb_path)
    d = toy / "notebooks" / "presets" / "toy"
    (d / "quick.yaml").write_text("n: 2\nrecords_dir: results/a\ntrain: false\n")
    (d / "quick_same.yaml").write_text("n: 3\nrecords_dir: results/a\ntrain: false\n")
    (d / "quick_own.yaml").write_text("n: 4\nrecords_dir: results/b\ntrain: false\n")
    assert [N.plot_preset("toy", p) for p in ("quick", "quick_same", "quick_own")] == [
        "quick", "quick", "quick_own"]
    executed = toy / "notebooks" / "_executed"
    assert N.main(["run", "toy", "--preset", "quick_same", "--timeout", "120"]) == 0
    assert "running toy --preset quick" in capsys.readouterr().err
    assert {p.name for p in executed.glob("*.ipynb")} == {"toy.quick.ipynb"}
    assert pd.read_csv(toy / "figs" / "toy_table.csv")["i"].tolist() == [0, 1]  # quick's n
    assert N.main(["run", "toy", "--preset", "quick_same", "-p", "train", "true",
                   "--timeout", "120"]) == 0  # trains: its own preset runs
    assert (executed / "toy.quick_same.ipynb").is_file()
    assert pd.read_csv(toy / "figs" / "toy_table.csv")["i"].tolist() == [0, 1, 2]


def test_run_all_skips_a_replot_only_preset_without_records_and_plots_one_with(toy):
    """``make figures PRESET=cpu``: a preset with ``train: false`` is skipped while its records
    folder is empty, and re-plotted once a record is in."""
    nb_path = toy / "notebooks" / "toy.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source += '\nrecords_dir: str = ""\ntrain: bool = True'
    nbformat.write(nb, nb_path)
    rdir = toy / "records"
    (toy / "notebooks" / "presets" / "toy" / "quick.yaml").write_text(
        f"n: 2\nrecords_dir: {rdir}\ntrain: false\n")
    assert "holds no records yet" in N._nothing_to_plot("toy", "quick", None)
    assert N.run_all("quick", timeout=120, figures=str(toy / "figs")) == []
    assert not (toy / "figs" / "toy_table.csv").exists()
    rdir.mkdir()
    (rdir / "r.json").write_text("{}")
    assert N._nothing_to_plot("toy", "quick", None) is None
    assert N.run_all("quick", timeout=120, figures=str(toy / "figs")) == []
    assert pd.read_csv(toy / "figs" / "toy_table.csv")["i"].tolist() == [0, 1]


def test_run_all_fills_gallery(toy):
    assert N.run_all("quick", timeout=120, figures=str(toy / "figs")) == []
    assert pd.read_csv(toy / "figs" / "toy_table.csv")["i"].tolist() == [0, 1]
    manifest = json.loads((toy / "figs" / "toy_table.json").read_text())
    assert (manifest["notebook"], manifest["preset"]) == ("toy", "quick")
    assert "`toy_table`: Toy" in (toy / "figs" / "README.md").read_text()
    executed = nbformat.read(toy / "notebooks" / "_executed" / "toy.quick.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == sys.executable  # our interpreter
    assert not list((toy / "notebooks" / "_executed").glob(".*tmp*"))


def test_failing_cell_is_named(toy, capsys):
    assert N.main(["run", "toy", "-p", "fail", "true", "--timeout", "120"]) == 1
    err = capsys.readouterr().err
    assert "failed in cell 2 of the source notebook" in err and "AssertionError: asked to fail" in err
    executed = toy / "notebooks" / "_executed"
    assert (executed / "toy.defaults.failed.ipynb").is_file()
    assert not (executed / "toy.defaults.ipynb").exists()


def test_clean_strips_outputs(toy):
    path = toy / "notebooks" / "toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="x\n")]
    nb.cells[1].execution_count = 3
    nb.cells[1].metadata["papermill"] = {"status": "completed"}
    nbformat.write(nb, path)
    assert check_committed(path) != []
    assert N.main(["clean"]) == 0 and check_committed(path) == []
    assert N.clean_notebook(path) is False  # idempotent


@pytest.mark.parametrize("text,match", [
    ("m: 1\n", "parameter name ['m'] in preset toy/bad.yaml: unknown"),
    ('fail: "false"\n', "'fail': got 'false' (str)"),
    ("- 1\n", "allowed: a mapping name -> value"),
])
def test_bad_preset_file(toy, capsys, text, match):
    (toy / "notebooks" / "presets" / "toy" / "bad.yaml").write_text(text)
    assert N.main(["run", "toy", "--preset", "bad"]) == 2
    assert match in capsys.readouterr().err
