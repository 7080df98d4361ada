"""analysis.figures: deterministic bytes, PDF/PNG metadata, manifests and the gallery."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis import figures  # noqa: E402

DATA = pd.DataFrame({"s": [1.0, 2.0, 3.0], "acts": [1.0, 0.707, 0.577], "model": ["a", "b", "c"]})
META = {"title": "Demo", "what": "acts vs s", "dataset": "synthetic (no CIFAR-10 found)",
        "records": ["results/quick/b", "results/quick/a"]}


def _render(outdir, name="demo", meta=META):
    figures.style()
    fig, ax = plt.subplots()
    ax.plot(DATA["s"], DATA["acts"], marker="o", label="acts")
    ax.set(xlabel="s", ylabel="ratio", title="demo")
    ax.legend()
    paths = figures.save_figure(fig, name, DATA, outdir, meta)
    plt.close(fig)
    return {k: p.read_bytes() for k, p in paths.items()}


def test_save_figure_is_byte_identical(tmp_path):
    a = _render(tmp_path / "a")
    b = _render(tmp_path / "b")
    c = _render(tmp_path / "a")  # overwrite in place
    assert set(a) == {"pdf", "png", "csv", "json"}
    assert a == b == c


def test_pdf_and_png_metadata(tmp_path):
    out = _render(tmp_path)
    assert b"CreationDate" not in out["pdf"] and b"ModDate" not in out["pdf"]
    assert b"/FontFile2" in out["pdf"] and b"/Type3" not in out["pdf"]  # TrueType (fonttype 42)
    assert out["png"].startswith(b"\x89PNG") and b"tIME" not in out["png"]
    assert b"Software" not in out["png"]


def test_csv_and_manifest_contents(tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_NOTEBOOK", "nb1")
    monkeypatch.setenv("BNN_PRESET", "quick")
    _render(tmp_path)
    assert pd.read_csv(tmp_path / "demo.csv").equals(DATA)
    m = json.loads((tmp_path / "demo.json").read_text())
    assert list(m) == list(figures.MANIFEST_KEYS)
    assert (m["kind"], m["notebook"], m["preset"]) == ("figure", "nb1", "quick")
    assert m["records"] == ["results/quick/a", "results/quick/b"]
    assert m["dataset"].startswith("synthetic") and sorted(m["files"]) == ["demo.csv", "demo.pdf", "demo.png"]


def test_dataset_footnote_is_stamped(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    figures.save_figure(fig, "f", DATA, tmp_path, META)
    figures.save_figure(fig, "f", DATA, tmp_path, META)  # a second save adds no second stamp
    notes = [t.get_text() for t in fig.texts]
    plt.close(fig)
    assert notes == ["Data: synthetic (no CIFAR-10 found)"]


@pytest.mark.parametrize("name,data,meta,match", [
    ("ok", DATA, {}, "title"),
    ("ok", DATA, {"title": "t", "color": 1}, "unknown keys"),
    ("a/b", DATA, META, "name"),
    ("ok", DATA.iloc[:0], META, "empty"),
    ("ok", [1, 2], META, "DataFrame"),
])
def test_bad_arguments(tmp_path, name, data, meta, match):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match=match):
        figures.save_figure(fig, name, data, tmp_path, meta)
    plt.close(fig)


def test_save_table_markdown_and_csv(tmp_path):
    df = pd.DataFrame({"model": ["r20", "r|18"], "ops": [1.23456e6, float("nan")], "n": [1, 2]})
    paths = figures.save_table(df, "tab", tmp_path, {"title": "T", "what": "caption", "dataset": "d"})
    md = paths["md"].read_text()
    assert "| model | ops | n |" in md and "| --- | ---: | ---: |" in md
    assert "| r20 | 1.235e+06 | 1 |" in md and "| r\\|18 |  | 2 |" in md
    assert "caption" in md and "Data: d" in md
    assert pd.read_csv(paths["csv"]).shape == (2, 3)
    assert json.loads(paths["json"].read_text())["kind"] == "table"


def test_gallery_lists_every_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_NOTEBOOK", "zeta")
    _render(tmp_path, "fig_z")
    monkeypatch.setenv("BNN_NOTEBOOK", "alpha")
    _render(tmp_path, "fig_a")
    figures.save_table(DATA, "tab_a", tmp_path, {"title": "Table A"})
    (tmp_path / "unrelated.json").write_text('{"x": 1}')
    text = figures.build_gallery(tmp_path).read_text()
    names = [m["name"] for m in figures.load_manifests(tmp_path)]
    assert names == ["fig_a", "tab_a", "fig_z"]  # by notebook, then name
    for n in names:
        assert f"`{n}`" in text
    assert text.index("## Notebook `alpha`") < text.index("## Notebook `zeta`")
    assert "![Demo](fig_a.png)" in text and "| s | acts | model |" in text
    assert "unrelated" not in text
    assert figures.build_gallery(tmp_path).read_text() == text


def test_provenance_from_records():
    recs = [{"config_hash": "bb", "dataset": {"name": "synthetic", "note": "no CIFAR-10 found"}},
            {"config_hash": "aa", "dataset": {"name": "synthetic", "note": "no CIFAR-10 found"}},
            {"config_hash": "aa", "dataset": {"name": "cifar10", "note": "JPEG-rebuilt copy"}}]
    p = figures.provenance(recs, "results/quick")
    assert p["records"] == ["results/quick/aa", "results/quick/bb"]
    assert p["dataset"] == "CIFAR-10 (JPEG-rebuilt copy); synthetic (no CIFAR-10 found)"
    assert figures.provenance([]) == {"records": [], "dataset": None, "scale": None}
    assert p["scale"] is None  # no training length in these records: no scale line


def test_best_val_epochs_per_seed():
    # NaN (a pandas column with a missing epoch) and None are skipped; floats print as ints
    assert figures.best_val_epochs([(28, 30), (float("nan"), 30), (30.0, 30), (None, 30)]) == "28/30, 30/30"
    assert figures.best_val_epochs([(None, 30)]) is None


def test_scale_is_stated_under_figures_and_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_PRESET", "cpu")
    recs = [{"config": {"epochs": e}, "dataset": {"name": "cifar10", "n_train": 45000}} for e in (30, 8, 30)]
    assert figures.scale_label(recs) == "8, 30 epochs on 45,000 training images"
    assert figures.scale_label([{"config": {"epochs": 1}}]) == "1 epoch"
    meta = {**META, **figures.provenance(recs[:1])}
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    figures.save_figure(fig, "f", DATA, tmp_path, meta)
    notes = [t.get_text() for t in fig.texts]
    plt.close(fig)
    assert notes == ["Data: CIFAR-10\nScale: preset cpu; 30 epochs on 45,000 training images"]
    assert json.loads((tmp_path / "f.json").read_text())["scale"] == "30 epochs on 45,000 training images"
    md = figures.save_table(DATA, "t", tmp_path, meta)["md"].read_text()
    assert md.endswith("Data: CIFAR-10\nScale: preset cpu; 30 epochs on 45,000 training images\n")


def test_gallery_flags_stale_files(tmp_path):
    _render(tmp_path, "fig_a")
    assert "Stale" not in figures.build_gallery(tmp_path).read_text()
    (tmp_path / "fig_a.csv").write_text("changed\n")
    (tmp_path / "fig_a.png").unlink()
    assert "**Stale**: fig_a.csv, fig_a.png missing or changed" in figures.build_gallery(tmp_path).read_text()
