"""The import direction of docs/ARCHITECTURE.md: bnnlib never imports analysis; a study
(a package under analysis/) imports bnnlib, the shared machinery at analysis/ top level and
itself, never another study; a top-level module that reads the studies (an aggregator such as
a cross-study planner) sits above them: no study imports it."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted(p.name for p in (ROOT / "analysis").iterdir()
                 if p.is_dir() and (p / "__init__.py").is_file())


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth (function bodies too)."""
    mod, out = _module(path), set()
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}  # `from analysis import dwr`
    return out


def _files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def _study_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "analysis" and parts[1] in STUDIES else None


def test_there_are_studies():
    assert {"complexity", "error_accumulation", "gain_surface", "dwr"} <= set(STUDIES)


@pytest.mark.parametrize("path", _files("bnnlib"), ids=lambda p: str(p.relative_to(ROOT)))
def test_bnnlib_never_imports_analysis(path):
    bad = sorted(n for n in imports(path) if n == "analysis" or n.startswith("analysis."))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", _files("analysis"), ids=lambda p: str(p.relative_to(ROOT)))
def test_studies_import_only_bnnlib_shared_machinery_and_themselves(path):
    rel = path.relative_to(ROOT / "analysis").parts
    if len(rel) == 1:
        return  # top level: shared machinery, or an aggregator (next test)
    bad = sorted(n for n in imports(path) if (s := _study_of(n)) is not None and s != rel[0])
    assert not bad, f"{path.relative_to(ROOT)} imports another study: {bad}"


def test_no_study_imports_a_top_level_module_that_imports_studies():
    top = {f"analysis.{p.stem}": p for p in (ROOT / "analysis").glob("*.py") if p.stem != "__init__"}
    above = {m for m, p in top.items() if any(_study_of(n) for n in imports(p))}
    for path in _files("analysis"):
        if len(path.relative_to(ROOT / "analysis").parts) > 1:
            bad = sorted(n for n in imports(path) if any(n == m or n.startswith(m + ".") for m in above))
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}, which import studies (a cycle)"
