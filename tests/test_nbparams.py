"""analysis.nbparams: parsing the parameters cell and strict validation."""
import json

import nbformat
import pytest

from analysis.nbparams import LAB_METADATA, check_committed, check_value, from_cli, parse_parameters, validate

CELL = """n: int = 3  # [1, 10] number of seeds
flag: bool = False  # toggles something
frac: float | None = 0.5  # [0, 1] fraction of training data
mode: str = "auto"  # one of: auto, cpu, cuda. Where the run goes
lr: float = 0.5  # one of: 0.5, 1.5; learning rate
xs: list[float] = [1, 2.5]  # (0, inf) scaling factors
names: list[str] = ["a"]  # one of: a, b
opts: dict = {"k": 1}
tag: str | None = None
"""


def _write(tmp_path, source=CELL, extra_tagged=0, name="nb.ipynb"):
    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell(source)]
    cells[1].metadata["tags"] = ["parameters"]
    for _ in range(extra_tagged):
        cells.append(nbformat.v4.new_code_cell("x: int = 1"))
        cells[-1].metadata["tags"] = ["parameters"]
    nb.cells = cells + [nbformat.v4.new_code_cell("print(n)")]
    nb.metadata.update(json.loads(json.dumps(LAB_METADATA)))  # what JupyterLab writes
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def params(tmp_path):
    return parse_parameters(_write(tmp_path))


def test_parse_types_defaults_help(params):
    assert list(params) == ["n", "flag", "frac", "mode", "lr", "xs", "names", "opts", "tag"]
    assert params["lr"].choices == ("0.5", "1.5")
    p = params["frac"]
    assert (p.base, p.nullable, p.default, p.bounds) == ("float", True, 0.5, (0.0, 1.0, True, True))
    assert p.help == "fraction of training data"
    assert params["xs"].default == [1.0, 2.5] and params["xs"].elem == "float"
    assert params["xs"].bounds == (0.0, float("inf"), False, False)
    assert params["mode"].choices == ("auto", "cpu", "cuda")
    assert params["names"].choices == ("a", "b")
    assert params["tag"].type == "str | None" and params["opts"].default == {"k": 1}


@pytest.mark.parametrize("values,match", [
    ({"nn": 3}, r"unknown; allowed: \['n', 'flag'"),
    ({"flag": "false"}, r"'flag': got 'false' \(str\).*write it unquoted: false"),
    ({"flag": 1}, r"'flag': got 1 \(int\)"),
    ({"n": 2.5}, r"'n': got 2.5 \(float\); allowed: an int in \[1, 10\]"),
    ({"n": True}, r"'n': got True \(bool\)"),
    ({"n": 11}, r"'n': got 11 .*\[1, 10\]"),
    ({"frac": 1.5}, r"'frac': got 1.5"),
    ({"mode": "gpu"}, r"'mode': got 'gpu'.*\['auto', 'cpu', 'cuda'\]"),
    ({"xs": [1, 0]}, r"'xs': got \[1, 0\].*\(0, inf\)"),
    ({"xs": 2.0}, r"'xs': got 2.0 \(float\); allowed: a list of numbers"),
    ({"names": ["a", "c"]}, r"'names'"),
    ({"n": None}, r"'n': got None"),
    ({"opts": [1]}, r"'opts'.*a mapping"),
])
def test_validate_rejects(params, values, match):
    with pytest.raises(ValueError, match=match):
        validate(params, values)


def test_validate_accepts_and_converts(params):
    out = validate(params, {"n": 10, "frac": None, "xs": [3], "flag": True, "tag": "x", "names": ["b"]})
    assert out == {"n": 10, "frac": None, "xs": [3.0], "flag": True, "tag": "x", "names": ["b"]}
    assert isinstance(out["xs"][0], float)


def test_from_cli_parses_yaml_but_keeps_text_for_str(params):
    assert from_cli(params["xs"], "[1, 2]") == [1, 2]
    assert from_cli(params["flag"], "false") is False
    assert from_cli(params["flag"], '"false"') == "false"  # then rejected by check_value
    assert from_cli(params["tag"], "123") == "123"
    assert from_cli(params["tag"], "null") is None
    with pytest.raises(ValueError, match="write it unquoted"):
        check_value(params["flag"], from_cli(params["flag"], "'true'"))


@pytest.mark.parametrize("source,match", [
    ("n: int = 0  # [1, 10] bad default", r"'n': got 0"),
    ("n = 3", "is not 'name: type = value'"),
    ("n: tuple = (1,)", "not supported"),
    ("n: int = 1 + 2", "not a literal"),
])
def test_bad_parameters_cell(tmp_path, source, match):
    with pytest.raises(ValueError, match=match):
        parse_parameters(_write(tmp_path, source))


def test_exactly_one_parameters_cell(tmp_path):
    path = _write(tmp_path, extra_tagged=1)
    with pytest.raises(ValueError, match="found 2 cells tagged 'parameters'"):
        parse_parameters(path)
    assert "2 cells tagged 'parameters' (need exactly 1)" in check_committed(path)


def test_check_committed_flags_outputs(tmp_path):
    path = _write(tmp_path)
    assert check_committed(path) == []
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="3\n")]
    nb.cells[2].execution_count = 1
    nbformat.write(nb, path)
    assert check_committed(path) == ["cell 2 has outputs or an execution count"]


def test_check_committed_flags_metadata_lab_would_rewrite(tmp_path):
    path = _write(tmp_path)
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"]["display_name"] = "Python 3"  # what Lab rewrites on opening
    nbformat.write(nb, path)
    problems = check_committed(path)
    assert len(problems) == 1 and problems[0].startswith("notebook metadata kernelspec: got ")
    assert "'Python 3'" in problems[0] and "allowed: {'display_name': 'Python 3 (ipykernel)'" in problems[0]
