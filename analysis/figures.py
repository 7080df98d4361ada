"""Shared figure style and deterministic saving of figures, tables and their manifests.

Every figure is written as NAME.pdf (TrueType fonts, fonttype 42), NAME.png (fixed dpi) and
NAME.csv (the plotted numbers); every table as NAME.md and NAME.csv. Each save also writes
NAME.json, a manifest (title, what it shows, notebook, preset, dataset, source records) from
which ``gallery`` builds ``figures/README.md``. Rendering twice from the same data gives the
same bytes: PDF dates and the PNG ``Software`` key are dropped, and nothing depends on time.

Outputs live in ``figures/<preset>/<study>/`` (``study_dir``), parallel to the run records in
``results/<preset>/<study>/``, so presets never overwrite each other. A study notebook's first
code cell calls ``setup_notebook``: it works from the repository root (JupyterLab starts
kernels in ``notebooks/``), stamps the notebook and preset on every manifest, and returns the
output folder. In a Jupyter kernel ``save_figure`` also shows the figure inline.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # headless outside Jupyter; saved bytes never depend on the backend

import pandas as pd  # noqa: E402

from bnnlib.data import describe  # noqa: E402

__all__ = ["style", "STYLE", "save_figure", "save_table", "load_manifests", "build_gallery",
           "MANIFEST_KEYS", "dataset_footnote", "provenance", "to_markdown", "REPO", "study_dir",
           "setup_notebook"]

REPO = Path(__file__).resolve().parents[1]

DPI = 200
# One style for every figure: bundled DejaVu fonts so bytes do not depend on system fonts.
STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.figsize": (5.0, 3.4),
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.hashsalt": "bnn-dwr",
    "path.simplify": False,
    "axes.prop_cycle": matplotlib.cycler(color=["#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                "#E69F00", "#56B4E9", "#F0E442", "#000000"]),
}
# Manifest fields, in gallery order. 'what' is the one-paragraph caption.
MANIFEST_KEYS = ("name", "kind", "title", "what", "notebook", "preset", "dataset", "scale",
                 "records", "files")
_PDF_META = {"CreationDate": None, "ModDate": None, "Creator": "bnn-dwr analysis.figures"}
_PNG_META = {"Software": None}


def style() -> None:
    """Apply the shared matplotlib style (idempotent)."""
    matplotlib.rcParams.update(STYLE)


def _check_part(what: str, value) -> None:
    if not isinstance(value, str) or not value or any(c in value for c in "/\\ ") or value.startswith("."):
        raise ValueError(f"{what}: got {value!r}; allowed: a folder name without spaces or slashes")


def study_dir(figures_dir: str | os.PathLike, preset: str, study: str) -> Path:
    """``figures_dir/PRESET/STUDY``: where a study's figures and tables for one preset go."""
    _check_part("preset", preset)
    _check_part("study", study)
    return Path(figures_dir) / preset / study


def setup_notebook(notebook: str, preset: str, figures_dir: str | os.PathLike = "figures",
                   study: str | None = None) -> Path:
    """Called by each study notebook before anything else; returns its output folder.

    Makes the repository root the working directory, so the notebook's relative paths
    (``records_dir``, ``figures_dir``) mean the same in JupyterLab, whose kernels start in
    ``notebooks/``, as under ``python -m analysis.notebooks`` (which runs from the root); and
    stamps ``notebook`` and ``preset`` on every manifest written afterwards (the runner sets
    the same values). Returns ``figures_dir/PRESET/STUDY`` (``study`` defaults to ``notebook``).
    """
    out = study_dir(figures_dir, preset, study or notebook)
    os.chdir(REPO)
    os.environ["BNN_NOTEBOOK"], os.environ["BNN_PRESET"] = notebook, preset
    return out


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill), where figures are shown inline."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython
    return getattr(get_ipython(), "kernel", None) is not None


def _meta(name: str, kind: str, meta: dict | None) -> dict:
    """Complete a manifest: runner env vars fill notebook/preset when the caller did not."""
    meta = dict(meta or {})
    unknown = sorted(set(meta) - set(MANIFEST_KEYS) - {"footnote"})
    if unknown:
        raise ValueError(f"meta: got unknown keys {unknown}; allowed: {list(MANIFEST_KEYS)}")
    if not meta.get("title"):
        raise ValueError(f"meta['title']: got {meta.get('title')!r}; allowed: a non-empty string")
    meta.setdefault("what", "")
    meta.setdefault("notebook", os.environ.get("BNN_NOTEBOOK") or None)
    meta.setdefault("preset", os.environ.get("BNN_PRESET") or None)
    meta.setdefault("dataset", None)
    meta.setdefault("scale", None)
    meta["records"] = sorted(str(r) for r in meta.get("records") or [])
    meta.update(name=name, kind=kind)
    meta.pop("footnote", None)
    return meta


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ValueError(f"name: got {name!r}; allowed: a file stem without spaces or slashes")


def _check_data(data) -> None:
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise ValueError(f"data: got {type(data).__name__}"
                         f"{' (empty)' if isinstance(data, pd.DataFrame) else ''}; "
                         "allowed: a non-empty pandas.DataFrame of the plotted numbers")


def _write_bytes(path: Path, payload: bytes) -> None:
    """Atomic write: temp file in the same folder, then os.replace."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    _write_bytes(path, df.to_csv(index=False, lineterminator="\n").encode())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_manifest(outdir: Path, meta: dict, files: list[Path]) -> Path:
    meta = {**meta, "files": {p.name: _sha256(p) for p in files}}
    ordered = {k: meta[k] for k in MANIFEST_KEYS}
    path = outdir / f"{meta['name']}.json"
    _write_bytes(path, (json.dumps(ordered, indent=2, sort_keys=False) + "\n").encode())
    return path


def _dataset_label(d) -> str | None:
    if isinstance(d, dict):
        return describe(d)
    return str(d) if d else None


def scale_label(records: list[dict]) -> str | None:
    """The training scale of run records, e.g. '30 epochs on 45,000 training images' (several
    values are listed, e.g. '8, 15, 30 epochs'); None when no record has a training length."""
    epochs, images = set(), set()
    for r in records:
        c = r.get("config") or {}
        e = c.get("epochs")
        if isinstance(e, int) and not isinstance(e, bool):
            epochs.add(e)
            d = r.get("dataset")
            if isinstance(d, dict) and isinstance(n := d.get("n_train"), int):
                images.add(n)
    if not epochs:
        return None
    out = f"{', '.join(map(str, sorted(epochs)))} epoch{'s' if epochs != {1} else ''}"
    if images:
        out += f" on {', '.join(f'{n:,}' for n in sorted(images))} training images"
    return out


def best_val_epochs(pairs) -> str | None:
    """Per seed 'best/epochs' (the best-validation epoch over the training length), comma
    separated, from (best_epoch, epochs) pairs; pairs without a best epoch are skipped. Whether
    validation accuracy still peaks at the last epochs shows at a glance. None when none has one."""
    out = [f"{int(b)}/{int(e)}" for b, e in pairs if pd.notna(b)]  # None or NaN: skipped
    return ", ".join(out) or None


def provenance(records: list[dict], records_dir: str | os.PathLike | None = None) -> dict:
    """Manifest fields ``records`` and ``dataset`` from the run records a figure plots.

    Pass the result as (part of) ``meta``: the dataset line, e.g. the synthetic stand-in or the
    JPEG-rebuilt CIFAR-10, then appears under the figure and in the gallery.
    """
    ids = sorted({str(r.get("config_hash")) for r in records if r.get("config_hash")})
    labels = sorted({lab for r in records if (lab := _dataset_label(r.get("dataset")))})
    prefix = f"{Path(records_dir).as_posix()}/" if records_dir else ""
    return {"records": [prefix + h for h in ids], "dataset": "; ".join(labels) or None,
            "scale": scale_label(records)}


def dataset_footnote(dataset: str | None, scale: str | None = None, preset: str | None = None) -> str | None:
    """The line stamped under a figure (and a table) that says which data it comes from and at
    which scale: preset and training length (the resolution is part of the dataset label)."""
    if not dataset:
        return None
    at = "; ".join(x for x in ((f"preset {preset}" if preset else None), scale) if x)
    return f"Data: {dataset}" + (f"\nScale: {at}" if scale else "")


def save_figure(fig, name: str, data: pd.DataFrame, outdir: str | os.PathLike = "figures",
                meta: dict | None = None, show: bool | None = None) -> dict[str, Path]:
    """Write NAME.pdf/.png/.csv/.json into ``outdir``; returns the paths by suffix.

    ``show`` (default: inside a Jupyter kernel) displays the figure inline once the files are
    written, then closes it so the inline backend does not show it a second time; the saved
    bytes do not depend on it.
    """
    _check_name(name)
    _check_data(data)
    full = _meta(name, "figure", meta)
    note = (dataset_footnote(full["dataset"], full["scale"], full["preset"])
            if (meta or {}).get("footnote", True) else None)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    if note and not getattr(fig, "_bnn_footnote", None):
        fig.text(0.01, -0.02, note, fontsize=7, color="0.35", ha="left", va="top")
        fig._bnn_footnote = note
    paths = {s: out / f"{name}.{s}" for s in ("pdf", "png", "csv")}
    for suffix, md in (("pdf", _PDF_META), ("png", _PNG_META)):
        tmp = paths[suffix].with_name(f".{name}.tmp{os.getpid()}.{suffix}")
        fig.savefig(tmp, format=suffix, dpi=DPI, metadata=md)
        os.replace(tmp, paths[suffix])
    _write_csv(data, paths["csv"])
    paths["json"] = _write_manifest(out, full, [paths["pdf"], paths["png"], paths["csv"]])
    if _in_kernel() if show is None else show:
        import matplotlib.pyplot as plt
        from IPython.display import display
        display(fig)
        plt.close(fig)
    return paths


def _fmt(v, floatfmt: str) -> str:
    if isinstance(v, float):
        return "" if v != v else format(v, floatfmt)
    return str(v).replace("|", "\\|")


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |",
             "| " + " | ".join("---:" if pd.api.types.is_numeric_dtype(df[c]) else "---"
                               for c in df.columns) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, floatfmt) for v in row) + " |")
    return "\n".join(lines) + "\n"


def save_table(df: pd.DataFrame, name: str, outdir: str | os.PathLike = "figures",
               meta: dict | None = None, floatfmt: str = ".4g") -> dict[str, Path]:
    """Write NAME.md (title, table, caption, data note) + NAME.csv + NAME.json into ``outdir``."""
    _check_name(name)
    _check_data(df)
    full = _meta(name, "table", meta)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / f"{name}.md", "csv": out / f"{name}.csv"}
    parts = [f"### {full['title']}\n", to_markdown(df, floatfmt)]
    if full["what"]:
        parts.append(f"\n{full['what']}\n")
    if full["dataset"]:
        parts.append(f"\n{dataset_footnote(full['dataset'], full['scale'], full['preset'])}\n")
    _write_bytes(paths["md"], "\n".join(parts).encode())
    _write_csv(df, paths["csv"])
    paths["json"] = _write_manifest(out, full, [paths["md"], paths["csv"]])
    return paths


def load_manifests(outdir: str | os.PathLike = "figures") -> list[dict]:
    """All manifests under ``outdir`` (any depth), sorted by (folder, notebook, name).

    Each carries ``dir``: its folder relative to ``outdir`` ('' for ``outdir`` itself, else
    ``PRESET/STUDY``); ``dir`` is not written to the manifest file.
    """
    found, root = [], Path(outdir)
    for p in sorted(root.rglob("*.json")):
        m = json.loads(p.read_text())
        if isinstance(m, dict) and m.get("kind") in ("figure", "table") and "name" in m:
            folder = "" if p.parent == root else p.parent.relative_to(root).as_posix()
            found.append({**m, "dir": folder})
    return sorted(found, key=lambda m: (m["dir"], str(m.get("notebook")), m["name"]))


def _gallery_entry(m: dict, outdir: Path, level: str = "###") -> list[str]:
    """Markdown lines for one manifest (tables are shown inline, figures as their PNG)."""
    name, files = m["name"], sorted(m.get("files") or {})
    here, link = outdir / m["dir"], (f"{m['dir']}/" if m["dir"] else "")
    lines = [f"{level} `{name}`: {m['title']}", ""]
    if m["kind"] == "figure" and f"{name}.png" in files:
        lines += [f"![{m['title']}]({link}{name}.png)", ""]
    table = here / f"{name}.md"
    if m["kind"] == "table" and table.is_file():
        body = [ln for ln in table.read_text().splitlines() if ln.startswith("|")]
        lines += body + [""]
    if m.get("what"):
        lines += [m["what"], ""]
    recs = m.get("records") or []
    stale = [f for f, sha in sorted((m.get("files") or {}).items())
             if not (here / f).is_file() or _sha256(here / f) != sha]
    if stale:
        lines += [f"> **Stale**: {', '.join(stale)} missing or changed since this manifest was "
                  "written; rerun its notebook.", ""]
    lines += [f"- Files: {', '.join(f'[{f}]({link}{f})' for f in files)}",
              f"- Made by: {_origin(m)}",
              f"- Dataset: {m.get('dataset') or 'none (computed from model definitions)'}",
              f"- Source records: {len(recs)}" + (f" (`{recs[0]}` ...)" if recs else ""), ""]
    return lines


def _origin(m: dict) -> str:
    nb, preset = m.get("notebook"), m.get("preset")
    where = f"`notebooks/{nb}.ipynb`" if nb else "outside the notebook runner"
    return where + (f", preset `{preset}`" if preset else ", notebook defaults")


def _short_label(dataset: str) -> str:
    """A dataset label short enough for the gallery's index (each entry gives the full one)."""
    if "JPEG-rebuilt" in dataset:
        return "CIFAR-10, JPEG-rebuilt copy"
    return dataset.split(" (")[0].split(";")[0].strip()


def _index(groups: dict) -> list[str]:
    """The gallery's table of contents: one row per (preset, study) folder."""
    lines = ["| preset | study | notebook | figures | tables | dataset | source records |",
             "| --- | --- | --- | ---: | ---: | --- | ---: |"]
    for folder, ms in groups.items():
        preset, _, study = folder.partition("/")
        nbs = sorted({f"`notebooks/{m['notebook']}.ipynb`" for m in ms if m.get("notebook")})
        data = sorted({_short_label(m["dataset"]) for m in ms if m.get("dataset")})
        recs = {r for m in ms for r in m.get("records") or []}
        lines.append(f"| `{preset}` | [`{study or '-'}`](#{preset}--{study}) | {', '.join(nbs) or '-'} | "
                     f"{sum(m['kind'] == 'figure' for m in ms)} | "
                     f"{sum(m['kind'] == 'table' for m in ms)} | "
                     f"{'; '.join(d.replace('|', '/') for d in data) or 'none (model definitions)'} | "
                     f"{len(recs)} |")
    return lines + [""]


def build_gallery(outdir: str | os.PathLike = "figures") -> Path:
    """Regenerate ``outdir/README.md`` from every manifest under ``outdir``.

    Figures in ``outdir/PRESET/STUDY/`` are listed by preset, then study; manifests directly
    in ``outdir`` (a flat folder, e.g. a test's) by notebook.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    manifests = load_manifests(out)
    lines = ["# Figures and tables", "",
             "Generated by `python -m analysis.notebooks gallery` from the manifests (`*.json`) "
             "written next to each figure and table; do not edit by hand. Every preset that has "
             "been run has a folder `PRESET/STUDY/`, parallel to `results/PRESET/STUDY/`. "
             "Regenerate with `make figures` (quick preset) or `make figures PRESET=paper`.", ""]
    if not manifests:
        lines += ["No figures yet.", ""]
    flat = [m for m in manifests if not m["dir"]]
    groups: dict = {}
    for m in manifests:
        if m["dir"]:
            groups.setdefault(m["dir"], []).append(m)
    if groups:
        lines += _index(groups)
    notebook = object()
    for m in flat:
        if m.get("notebook") != notebook:
            notebook = m.get("notebook")
            lines += [f"## Notebook `{notebook}`" if notebook else "## Other", ""]
        lines += _gallery_entry(m, out)
    preset = None
    for folder, ms in groups.items():
        p, _, study = folder.partition("/")
        if p != preset:
            preset = p
            lines += [f"## Preset `{p}`", ""]
        nbs = sorted({m["notebook"] for m in ms if m.get("notebook")})
        lines += [f"### {p} / {study}", ""]
        if nbs:
            lines += [f"Notebook: {', '.join(f'`notebooks/{n}.ipynb`' for n in nbs)}", ""]
        for m in ms:
            lines += _gallery_entry(m, out, "####")
    path = out / "README.md"
    _write_bytes(path, "\n".join(lines).rstrip("\n").encode() + b"\n")
    return path
