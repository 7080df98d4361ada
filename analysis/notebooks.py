"""Run the study notebooks with validated parameters: ``python -m analysis.notebooks ...``.

Commands: ``list``, ``describe NAME``, ``run NAME [--preset P] [-p key value ...] [--timeout S]
[--records DIR] [--figures DIR] [--check]``, ``run-all [--preset P]``, ``gallery``, ``check``
(committed notebooks are clean) and ``clean [NAME ...]`` (strip outputs before committing).

Parameters are the type-annotated assignments of the one cell tagged ``parameters``; a
trailing comment is the help and may start with a range (``# [0, 1] fraction``, ``(0, inf)``)
or name the choices (``# one of: cpu, cuda``). Values merge as notebook defaults < preset YAML
(``notebooks/presets/NAME/PRESET.yaml``) < ``-p`` overrides (each parsed as YAML), and are
checked strictly before any kernel starts: papermill alone only warns about unknown names and
passes ``-p flag false`` on as a (truthy) string.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import yaml

from .nbparams import (LAB_METADATA, Param, check_committed, check_names, from_cli, parse_parameters,
                       validate)

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
PRESET_DIR = NB_DIR / "presets"
EXEC_DIR = NB_DIR / "_executed"
KERNEL = "python3"
# No per-cell limit by default: a cell that trains (paper presets: hours; the sweep runner
# under it is resumable) must not be killed by the notebook runner. --timeout S sets one.
DEFAULT_TIMEOUT = None  # formerly 7200 s, which killed every paper-scale training cell
# (a quick-preset cell that trains stays well below that)


# ---- notebooks and presets ----------------------------------------------------------------------
def list_notebooks() -> list[str]:
    """Names of the notebooks in notebooks/, sorted."""
    return sorted(p.stem for p in NB_DIR.glob("*.ipynb"))


def notebook_path(name: str) -> Path:
    """Path of notebook ``name`` (ValueError when unknown)."""
    if name not in list_notebooks():
        raise ValueError(f"notebook: got {name!r}; allowed: {list_notebooks()}")
    return NB_DIR / f"{name}.ipynb"


def list_presets(name: str) -> list[str]:
    """Preset names available for notebook ``name``."""
    return sorted(p.stem for p in (PRESET_DIR / name).glob("*.yaml"))


def load_preset(name: str, preset: str) -> dict[str, Any]:
    """The raw mapping in notebooks/presets/NAME/PRESET.yaml."""
    path = PRESET_DIR / name / f"{preset}.yaml"
    if not path.is_file():
        raise ValueError(f"preset: got {preset!r} for notebook {name!r}; allowed: {list_presets(name)}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: got a {type(data).__name__}; allowed: a mapping name -> value")
    return data


def resolve(name: str, preset: str | None = None, overrides: dict[str, Any] | None = None,
            params: dict[str, Param] | None = None) -> dict[str, Any]:
    """Defaults < preset < overrides, all validated; returns the full parameter dict."""
    params = params or parse_parameters(notebook_path(name))
    values = {k: p.default for k, p in params.items()}
    if preset:
        values.update(validate(params, load_preset(name, preset), f"preset {name}/{preset}.yaml"))
    values.update(validate(params, overrides or {}, "-p overrides"))
    return values


# ---- execution ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _kernel_env(name: str, preset: str | None):
    """A ``python3`` kernelspec bound to this interpreter, plus env vars the kernel inherits."""
    with tempfile.TemporaryDirectory(prefix="bnn-kernel-") as tmp:
        kdir = Path(tmp, "kernels", KERNEL)
        kdir.mkdir(parents=True)
        # log-level ERROR: drops the kernel app's TCP-transport warning on every start.
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                         "--log-level=ERROR"],
                "display_name": "Python 3 (bnn-dwr)", "language": "python"}
        (kdir / "kernel.json").write_text(json.dumps(spec))
        env = {"JUPYTER_PATH": os.pathsep.join(filter(None, [tmp, os.environ.get("JUPYTER_PATH")])),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               "BNN_NOTEBOOK": name, "BNN_PRESET": preset or "",
               # one BLAS/OpenMP thread: fits and bootstrap bands then give the same last bits on
               # every machine (the byte-identical re-render guarantee); training cells set their
               # own torch threads
               **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _failing_cell(nb_path: Path, exc: BaseException) -> str:
    """'cell N of the source notebook (first line)' for the cell that failed."""
    try:
        cells = nbformat.read(nb_path, as_version=4).cells
    except Exception:  # noqa: BLE001 - the partial output may be unreadable; report what we know
        return f"executed cell {getattr(exc, 'cell_index', '?')}"
    # papermill adds an injected-parameters cell and, on failure, an error banner cell.
    added = ("injected-parameters", "papermill-error-cell-tag")
    src = [c for c in cells if not set(c.get("metadata", {}).get("tags", [])) & set(added)]
    status = lambda c: c.get("metadata", {}).get("papermill", {}).get("status")
    bad = [i for i, c in enumerate(src) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    bad = bad or [i for i, c in enumerate(src) if status(c) == "running"]
    if not bad:
        return f"executed cell {getattr(exc, 'cell_index', '?')}"
    first = (src[bad[0]].source.strip().splitlines() or [""])[0]
    return f"cell {bad[0]} of the source notebook ({first[:70]!r})"


class _QuietUnknown(logging.Filter):
    """papermill's inspection misses ``X | None`` annotations; our own parser already checked."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


_QUIET = _QuietUnknown()


def _extra_params(params: dict[str, Param], records: str | None, figures: str | None,
                  preset: str | None) -> dict[str, Any]:
    """--records/--figures/--preset passed on where the notebook declares them."""
    extra = {}
    for key, value in (("records_dir", records), ("figures_dir", figures), ("preset", preset)):
        if value is None:
            continue
        if key in params:
            extra[key] = value
        elif key != "preset":
            print(f"note: notebook does not declare {key!r}; {value!r} ignored", file=sys.stderr)
    return extra


def run_notebook(name: str, preset: str | None = None, overrides: dict[str, Any] | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT, records: str | None = None,
                 figures: str | None = None, exec_dir: str | os.PathLike | None = None,
                 log_output: bool = False, cwd: str | os.PathLike | None = None) -> Path:
    """Validate, execute with papermill and return the executed notebook's path.

    The kernel starts in ``cwd`` (default: the repository root; JupyterLab starts it in
    ``notebooks/``); either way the notebook's ``setup_notebook`` call resolves relative paths
    against the repository root.

    Raises ValueError for bad parameters (nothing runs) and RuntimeError naming the failing
    cell when execution fails.
    """
    import papermill

    params = parse_parameters(notebook_path(name))
    overrides = {**_extra_params(params, records, figures, preset), **(overrides or {})}
    values = resolve(name, preset, overrides, params)
    out_dir = Path(exec_dir) if exec_dir else EXEC_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{name}.{preset or 'defaults'}.ipynb"
    tmp = out_dir / f".{final.stem}.{os.getpid()}.tmp.ipynb"
    logging.getLogger("papermill").addFilter(_QUIET)
    try:
        with _kernel_env(name, preset):
            papermill.execute_notebook(
                str(notebook_path(name)), str(tmp), parameters=values, kernel_name=KERNEL,
                language="python", cwd=str(cwd or REPO), progress_bar=False, start_timeout=120,
                execution_timeout=timeout or None, log_output=log_output)
    except Exception as exc:  # noqa: BLE001 - every kernel-side failure is reported the same way
        failed = out_dir / f"{final.stem}.failed.ipynb"
        where = _failing_cell(tmp, exc)
        if tmp.exists():
            os.replace(tmp, failed)
        msg = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}"
        raise RuntimeError(f"notebook {name!r} failed in {where}: {msg.strip()}\n"
                           f"partial output: {failed}") from exc
    except BaseException:  # Ctrl-C: leave no temp file behind
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    return final


def clean_notebook(path: Path) -> bool:
    """Strip outputs, execution counts and papermill metadata in place, and set the kernelspec
    and language_info JupyterLab writes (``LAB_METADATA``); True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    nb.cells = [c for c in nb.cells
                if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for c in nb.cells:
        c.metadata.pop("papermill", None)
        c.metadata.pop("execution", None)
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.metadata.pop("papermill", None)
    nb.metadata.update(json.loads(json.dumps(LAB_METADATA)))
    if nbformat.writes(nb) == before:
        return False
    nbformat.write(nb, path)
    return True


def notebooks_with_preset(preset: str) -> list[str]:
    """Notebooks that have ``preset``, in a stable (sorted) order."""
    return [n for n in list_notebooks() if (PRESET_DIR / n / f"{preset}.yaml").is_file()]


def preset_runs(preset: str, companions: bool = True) -> list[tuple[str, str]]:
    """(notebook, preset) pairs ``run-all --preset PRESET`` executes: each notebook's PRESET,
    then (``companions``) its presets named ``PRESET_*`` (``cpu`` -> ``gain_surface``'s
    ``cpu_long``: the same regime's other runs). A companion that shares PRESET's ``records_dir``
    is left out: its notebook would re-plot the same pooled records under another name
    (``error_accumulation``'s ``cpu_trained`` writes into ``cpu``'s folder, whose figures show
    both its initialisation and its trained measurements)."""
    out = []
    for n in list_notebooks():
        own = [preset] if (PRESET_DIR / n / f"{preset}.yaml").is_file() else []
        more = sorted(f.stem for f in (PRESET_DIR / n).glob(f"{preset}_*.yaml")) if companions else []
        out += [(n, p) for p in own + [m for m in more if plot_preset(n, m) == m]]
    return out


def plot_preset(name: str, preset: str) -> str:
    """The preset whose figures show ``preset``'s records: its base preset (``cpu_trained`` ->
    ``cpu``) when ``preset`` is a companion ``BASE_*`` writing into BASE's ``records_dir``
    (BASE's notebook already plots the pooled records), else ``preset`` itself."""
    for i in range(len(preset) - 1, 0, -1):
        if preset[i] != "_" or not (PRESET_DIR / name / f"{preset[:i]}.yaml").is_file():
            continue
        base = preset[:i]
        rdir = load_preset(name, base).get("records_dir")
        if rdir is not None and load_preset(name, preset).get("records_dir") == rdir:
            return base
    return preset


def _replots_only(values: dict[str, Any]) -> bool:
    """True when resolved notebook parameters train nothing (``train``/``run`` false)."""
    return values.get("train", values.get("run", True)) is False


def _nothing_to_plot(name: str, preset: str, records: str | None) -> str | None:
    """Why a re-plot-only preset (``train``/``run`` false) has nothing to do: its records folder
    holds no JSON record yet (the long ``cpu`` sweeps run through the sweep CLIs, in chunks);
    None when the notebook should run."""
    values = resolve(name, preset)
    if not _replots_only(values):
        return None
    rdir = Path(records or values.get("records_dir") or "")
    rdir = rdir if rdir.is_absolute() else REPO / rdir
    if rdir.is_dir() and next(rdir.rglob("*.json"), None) is not None:
        return None
    return (f"preset {preset!r} only re-plots and {rdir.relative_to(REPO) if rdir.is_relative_to(REPO) else rdir} "
            "holds no records yet (train them with the study's CLI or analysis.sweep)")


def run_all(preset: str, timeout: float | None = DEFAULT_TIMEOUT, records: str | None = None,
            figures: str | None = None, log_output: bool = False) -> list[str]:
    """Run every notebook that has ``preset`` (and its ``PRESET_*`` companion presets, unless
    ``records`` points all of them at one folder), then rebuild the gallery; returns the
    failures (``name`` or ``name:preset`` for a companion)."""
    from .figures import build_gallery

    failures, start = [], time.perf_counter()
    runs = preset_runs(preset, companions=records is None)
    for name, p in runs:
        t0, tag = time.perf_counter(), name if p == preset else f"{name}:{p}"
        why = _nothing_to_plot(name, p, records)
        if why:
            print(f"[{tag}] skipped: {why}", flush=True)
            continue
        print(f"[{tag}] running with preset {p!r} ...", flush=True)
        try:
            path = run_notebook(name, p, timeout=timeout, records=records, figures=figures,
                                log_output=log_output)
            print(f"[{tag}] done in {time.perf_counter() - t0:.0f} s -> {path}")
        except Exception as exc:  # noqa: BLE001 - one broken notebook must not stop the rest
            failures.append(tag)
            print(f"[{tag}] FAILED after {time.perf_counter() - t0:.0f} s: {exc}", file=sys.stderr)
    print(f"gallery: {build_gallery(REPO / (figures or 'figures'))}")
    print(f"run-all {preset!r}: {len(runs) - len(failures)}/{len(runs)} notebook runs in "
          f"{(time.perf_counter() - start) / 60:.1f} min" + (f"; failed: {failures}" if failures else ""))
    return failures


# ---- command line ---------------------------------------------------------------------------------
def study_parser(study: str, notebook: str, description: str, commands: dict[str, str],
                 example: str) -> argparse.ArgumentParser:
    """The parser a study's ``__main__`` starts from: COMMAND, ``--preset`` (the notebook's
    presets) and ``--records``; the study adds its own options."""
    from bnnlib.cli import Parser
    ap = Parser(prog=f"python -m analysis.{study}", description=description, example=example)
    ap.add_argument("command", choices=tuple(commands),
                    help="; ".join(f"{k}: {v}" for k, v in commands.items()))
    ap.add_argument("--preset", default="quick", help=f"preset of notebooks/{notebook}.ipynb, one of "
                    f"{list_presets(notebook)} (notebooks/presets/{notebook}/PRESET.yaml)")
    ap.add_argument("--records", help="records folder (overrides the preset's records_dir)")
    return ap


def _describe(name: str) -> str:
    params = parse_parameters(notebook_path(name))
    rows = [f"notebook: notebooks/{name}.ipynb   presets: {list_presets(name) or 'none'}", ""]
    for p in params.values():
        rows.append(f"  {p.name}: {p.type} = {p.default!r}")
        rows.append(f"      allowed: {p.allowed()}" + (f"; {p.help}" if p.help else ""))
    for pr in list_presets(name):
        rows.append(f"\npreset {pr}: {json.dumps(resolve(name, pr, params=params))}")
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    from bnnlib.cli import Parser
    ap = Parser(prog="python -m analysis.notebooks", description=__doc__.split("\n")[0],
                example="python -m analysis.notebooks run complexity --preset quick -p factors \"[2.0, 4.0]\"")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND",
                            help="one of: list, describe, run, run-all, gallery, check, clean")
    sub.add_parser("list", help="notebooks and their presets",
                   example="python -m analysis.notebooks list")
    sub.add_parser("describe", help="parameters: type, default, allowed values, help; presets",
                   example="python -m analysis.notebooks describe gain_surface").add_argument(
        "name", help=f"notebook, one of {list_notebooks()}")
    for cmd in ("run", "run-all"):
        one = cmd == "run"
        sp = sub.add_parser(cmd, help="execute one notebook" if one else
                            "execute every notebook that has PRESET, then rebuild the gallery",
                            example="python -m analysis.notebooks run gain_surface --preset quick -p train false"
                            if one else "python -m analysis.notebooks run-all --preset quick")
        if one:
            sp.add_argument("name", help=f"notebook, one of {list_notebooks()}")
            sp.add_argument("-p", "--param", nargs=2, action="append", default=[],
                            metavar=("KEY", "VALUE"), help="override one parameter (VALUE parsed as "
                            "YAML; `describe NAME` lists keys and allowed values); repeatable")
            sp.add_argument("--check", action="store_true", help="validate and print the merged "
                            "parameters as JSON, do not run")
        sp.add_argument("--preset", default=None if one else "quick",
                        help="preset name (notebooks/presets/NAME/PRESET.yaml; `list` shows them); "
                             "also the output folder figures/PRESET/STUDY/" + ("; none: notebook "
                             "defaults" if one else ""))
        sp.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="limit per cell in seconds, a number >= 0 (0: no limit)")
        sp.add_argument("--records", help="records folder, relative to the repo root (sets "
                        "records_dir); none: the preset's")
        sp.add_argument("--figures", help="root of the figures tree, relative to the repo root "
                        "(sets figures_dir; outputs go to FIGURES/PRESET/STUDY/); none: figures")
        sp.add_argument("--log-output", action="store_true", help="stream cell outputs while running")
    sub.add_parser("gallery", help="rebuild FIGURES/README.md from the manifests",
                   example="python -m analysis.notebooks gallery").add_argument(
        "--figures", default="figures", help="root of the figures tree, relative to the repo root")
    sub.add_parser("check", help="committed notebooks carry no outputs, one parameters cell and "
                   "JupyterLab's metadata", example="python -m analysis.notebooks check")
    sub.add_parser("clean", help="strip outputs and execution metadata in place (before committing)",
                   example="python -m analysis.notebooks clean gain_surface").add_argument(
        "names", nargs="*", help=f"notebooks, any of {list_notebooks()}; none: all")
    return ap


def _run_cmd(a) -> int:
    params = parse_parameters(notebook_path(a.name))
    check_names(params, [k for k, _ in a.param], "-p overrides")
    overrides = {k: from_cli(params[k], v) for k, v in a.param}
    if a.check:
        extra = _extra_params(params, a.records, a.figures, a.preset)
        print(json.dumps(resolve(a.name, a.preset, {**extra, **overrides}, params), indent=1))
        return 0
    preset = a.preset
    base = plot_preset(a.name, preset) if preset is not None and a.records is None else preset
    if base != preset and _replots_only(resolve(a.name, preset, overrides, params)):
        preset = base
        print(f"note: preset {a.preset!r} only re-plots, and its records sit in preset {preset!r}'s "
              f"folder, whose notebook plots both: running {a.name} --preset {preset}", file=sys.stderr)
    path = run_notebook(a.name, preset, overrides, a.timeout, a.records, a.figures,
                        log_output=a.log_output)
    print(f"executed: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2: bad parameters, 1: execution failed)."""
    a = _parser().parse_args(argv)
    if getattr(a, "log_output", False):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if a.cmd == "list":
            for n in list_notebooks():
                print(f"{n:24s} presets: {', '.join(list_presets(n)) or '-'}")
        elif a.cmd == "describe":
            print(_describe(a.name))
        elif a.cmd == "run":
            return _run_cmd(a)
        elif a.cmd == "run-all":
            return 1 if run_all(a.preset, a.timeout, a.records, a.figures, a.log_output) else 0
        elif a.cmd == "gallery":
            from .figures import build_gallery
            print(build_gallery(REPO / a.figures))
        elif a.cmd == "clean":
            for n in a.names or list_notebooks():
                if clean_notebook(notebook_path(n)):
                    print(f"cleaned notebooks/{n}.ipynb")
        elif a.cmd == "check":
            bad = {n: check_committed(notebook_path(n)) for n in list_notebooks()}
            for n, probs in bad.items():
                for prob in probs:
                    print(f"notebooks/{n}.ipynb: {prob}", file=sys.stderr)
            dirty = [n for n, probs in bad.items() if probs]
            if dirty:
                print(f"fix: python -m analysis.notebooks clean {' '.join(dirty)}  (strips outputs, "
                      "execution counts and papermill metadata; sets the metadata JupyterLab writes)",
                      file=sys.stderr)
            return 1 if dirty else 0
    except ValueError as exc:
        from bnnlib.cli import fail
        return fail(exc)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
