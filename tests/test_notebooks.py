"""analysis.notebooks: committed notebooks are clean, bad parameters fail before any kernel
starts, and notebooks run through papermill write the numbers we expect."""
import json
import math

import nbformat
import pandas as pd
import pytest

from analysis import notebooks as N
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


def test_cli_check_merges_defaults_preset_overrides(capsys):
    assert N.main(["run", "complexity", "--preset", "quick", "-p", "table8", "false",
                   "--figures", "out", "--check"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["table8"] is False and values["figures_dir"] == "out"
    assert values["models"] == N.load_preset("complexity", "quick")["models"]


def test_complexity_notebook_numbers(tmp_path):
    figs = tmp_path / "figs"
    out = N.run_notebook("complexity", None, {"models": ["resnet20"], "factors": [3.0],
                                              "precisions": ["fp"], "dwr_pairs": False},
                         timeout=300, figures=str(figs), exec_dir=tmp_path / "exec")
    assert out == tmp_path / "exec" / "complexity.defaults.ipynb" and out.is_file()
    long = pd.read_csv(figs / "complexity_scaling.csv")
    body = long[long["scope"] == "body"].set_index(["transform", "quantity"])["measured"]
    assert body["naive", "acts"] == pytest.approx(1 / math.sqrt(3), rel=0.02)  # Table 3
    assert body["width", "ops"] == pytest.approx(3.0, rel=0.03)  # Table 1, width row
    assert body["width", "acts"] == pytest.approx(math.sqrt(3), rel=0.02)
    assert body["depth", "acts"] == pytest.approx(3.0, rel=1e-9)
    t8 = pd.read_csv(figs / "complexity_table8.csv", keep_default_na=False)
    t8 = t8.set_index(["method", "reshaping"])
    assert t8.loc[("FP", "Original"), "ours_ops_1e8"] == pytest.approx(18.2, rel=0.01)  # ~1.82e9 MACs
    assert t8.loc[("None", "Original"), "ours_ops_1e8"] == pytest.approx(1.63, rel=0.01)  # Bi-Real
    manifest = json.loads((figs / "complexity_scaling.json").read_text())
    assert (manifest["notebook"], manifest["preset"]) == ("complexity", None)
    assert not (figs / "complexity_dwr.csv").exists()  # dwr_pairs=False was honoured


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
                nbformat.v4.new_code_cell("assert not fail, 'asked to fail'")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, nbdir / "toy.ipynb")
    (nbdir / "presets" / "toy" / "quick.yaml").write_text("n: 2\n")
    monkeypatch.setattr(N, "NB_DIR", nbdir)
    monkeypatch.setattr(N, "PRESET_DIR", nbdir / "presets")
    monkeypatch.setattr(N, "EXEC_DIR", nbdir / "_executed")
    return tmp_path


def test_run_all_fills_gallery(toy):
    assert N.run_all("quick", timeout=120, figures=str(toy / "figs")) == []
    assert pd.read_csv(toy / "figs" / "toy_table.csv")["i"].tolist() == [0, 1]
    manifest = json.loads((toy / "figs" / "toy_table.json").read_text())
    assert (manifest["notebook"], manifest["preset"]) == ("toy", "quick")
    assert "`toy_table`: Toy" in (toy / "figs" / "README.md").read_text()
    assert (toy / "notebooks" / "_executed" / "toy.quick.ipynb").is_file()
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
