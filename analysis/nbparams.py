"""Notebook parameters: parse the ``parameters`` cell and validate values strictly.

A parameter is a type-annotated assignment (``depths: list[int] = [1, 2, 3]  # help``) in the
one cell tagged ``parameters``. Types: int, float, str, bool, dict, list[int|float|str|bool],
each optionally ``| None``. A trailing comment is the help; it may start with a range
(``# [0, 1] fraction``, ``(0, inf)``) or name the choices (``# one of: cpu, cuda``), which then
apply to the value (or to every element of a list). papermill alone only warns about unknown
names and passes ``-p flag false`` on as a truthy string; here both are errors.
"""
from __future__ import annotations

import ast
import io
import math
import os
import re
import tokenize
from dataclasses import dataclass, field, replace
from typing import Any

import nbformat
import yaml

__all__ = ["Param", "parse_parameters", "parameters_cells", "check_value", "check_names", "validate",
           "from_cli", "check_committed"]

SCALARS = ("int", "float", "str", "bool", "dict")
_NUM = r"[-+]?(?:inf|\d+(?:\.\d*)?(?:e[-+]?\d+)?)"
_RANGE = re.compile(rf"^\s*([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])\s*(.*)$", re.I)
_CHOICES = re.compile(r"one of:\s*(.+?)\s*(?:;|\.\s|\.?$)", re.I)  # "0.5" stays one choice


@dataclass(frozen=True)
class Param:
    """One declared notebook parameter."""

    name: str
    type: str  # e.g. "int", "list[float]", "str | None"
    base: str  # int | float | str | bool | dict | list
    elem: str | None  # element type of a list
    nullable: bool
    default: Any
    help: str = ""
    bounds: tuple | None = None  # (low, high, low_closed, high_closed)
    choices: tuple = field(default=())

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        what = {"int": "an int", "float": "a number", "str": "a string", "dict": "a mapping",
                "bool": "true or false (unquoted YAML booleans)"}
        many = {"int": "ints", "float": "numbers", "str": "strings", "bool": "booleans"}
        desc = f"a list of {many[self.elem]}" if self.base == "list" else what[self.base]
        if self.bounds:
            lo, hi, lc, hc = self.bounds
            desc += f" in {'[' if lc else '('}{lo:g}, {hi:g}{']' if hc else ')'}"
        if self.choices:
            desc += f" from {list(self.choices)}"
        return desc + (" or null" if self.nullable else "")


# ---- parsing the parameters cell ------------------------------------------------------------
def _parse_type(node: ast.AST, where: str) -> tuple[str, str | None, bool]:
    """(base, elem, nullable) from an annotation such as ``list[int] | None``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [node.left, node.right]
        nones = [s for s in sides if isinstance(s, ast.Constant) and s.value is None]
        if len(nones) == 1:
            base, elem, _ = _parse_type(sides[0] if nones[0] is sides[1] else sides[1], where)
            return base, elem, True
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        if node.value.id == "Optional":
            return (*_parse_type(node.slice, where)[:2], True)
        if node.value.id == "list" and isinstance(node.slice, ast.Name) and node.slice.id in SCALARS[:4]:
            return "list", node.slice.id, False
    if isinstance(node, ast.Name) and node.id in SCALARS:
        return node.id, None, False
    raise ValueError(f"{where}: annotation {ast.unparse(node)!r} is not supported; allowed: "
                     "int, float, str, bool, dict, list[int|float|str|bool], each optionally '| None'")


def _comments(src: str) -> dict[int, str]:
    """Line number -> trailing comment text."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _parse_help(text: str) -> tuple[str, tuple | None, tuple]:
    """Split a help comment into (help, bounds, choices)."""
    bounds, choices = None, ()
    m = _RANGE.match(text)
    if m:
        bounds = (float(m[2]), float(m[3]), m[1] == "[", m[4] == "]")
        text = m[5]
    m = _CHOICES.search(text)
    if m:
        choices = tuple(c.strip() for c in m[1].split(",") if c.strip())
    return text, bounds, choices


def parameters_cells(nb) -> list[int]:
    """Indices of the cells tagged ``parameters``."""
    return [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]


def parse_parameters(path: str | os.PathLike) -> dict[str, Param]:
    """Declared parameters of a notebook, in order, with parsed types, defaults and ranges."""
    nb = nbformat.read(path, as_version=4)
    idx = parameters_cells(nb)
    if len(idx) != 1:
        raise ValueError(f"{path}: found {len(idx)} cells tagged 'parameters'; allowed: exactly 1")
    src = nb.cells[idx[0]].source
    comments, params = _comments(src), {}
    for node in ast.parse(src).body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value):
            raise ValueError(f"{path}: parameters cell line {node.lineno} is not 'name: type = value'")
        name = node.target.id
        base, elem, nullable = _parse_type(node.annotation, f"{path}: parameter {name!r}")
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise ValueError(f"{path}: default of {name!r} is not a literal") from None
        help_, bounds, choices = _parse_help(comments.get(node.end_lineno, ""))
        p = Param(name, ast.unparse(node.annotation), base, elem, nullable, default, help_,
                  bounds, choices)
        # A notebook whose defaults break its own rules is a bug: check them here too.
        params[name] = replace(p, default=check_value(p, default))
    _crosscheck_papermill(path, nb.cells[idx[0]], params)
    return params


def _crosscheck_papermill(path, cell, params: dict[str, Param]) -> None:
    """papermill's own inspection (its Python translator) must not see a parameter we missed."""
    from papermill.translators import papermill_translators

    seen = papermill_translators.find_translator("python3", "python").inspect(cell)
    missing = sorted({p.name for p in seen} - set(params))
    if missing:
        raise ValueError(f"{path}: papermill sees parameters {missing} that were not parsed")


# ---- validation -------------------------------------------------------------------------------
def _bad(p: Param, v: Any, extra: str = "") -> ValueError:
    return ValueError(f"parameter {p.name!r}: got {v!r} ({type(v).__name__}); "
                      f"allowed: {p.allowed()}{extra}")


def _check_scalar(p: Param, base: str, v: Any) -> Any:
    if base == "bool":
        if isinstance(v, bool):
            return v
        hint = (" (a bool was given as the string " f"{v!r}; write it unquoted: {v.lower()})"
                if isinstance(v, str) and v.strip().lower() in ("true", "false", "yes", "no") else "")
        raise _bad(p, v, hint)
    if isinstance(v, bool) and base in ("int", "float"):
        raise _bad(p, v)
    if base == "int" and isinstance(v, int):
        return v
    if base == "float" and isinstance(v, (int, float)):
        return float(v)
    if base == "str" and isinstance(v, str):
        return v
    if base == "dict" and isinstance(v, dict):
        return v
    raise _bad(p, v)


def _check_limits(p: Param, v: Any, shown: Any) -> None:
    if p.bounds and isinstance(v, (int, float)):
        lo, hi, lc, hc = p.bounds
        if math.isnan(v) or v < lo or v > hi or (v == lo and not lc) or (v == hi and not hc):
            raise _bad(p, shown)
    if p.choices and str(v) not in p.choices:
        raise _bad(p, shown)


def check_value(p: Param, v: Any) -> Any:
    """The value converted to the declared type (int -> float only), or ValueError."""
    if v is None:
        if p.nullable:
            return None
        raise _bad(p, v)
    if p.base == "list":
        if not isinstance(v, (list, tuple)):
            raise _bad(p, v)
        out = [_check_scalar(p, p.elem, x) for x in v]
        for x in out:
            _check_limits(p, x, v)
        return out
    out = _check_scalar(p, p.base, v)
    _check_limits(p, out, v)
    return out


def check_names(params: dict[str, Param], names, source: str = "") -> None:
    """ValueError listing the names that the notebook does not declare."""
    unknown = sorted(set(names) - set(params))
    if unknown:
        raise ValueError(f"parameter name{'s' if len(unknown) > 1 else ''} {unknown}"
                         f"{' in ' + source if source else ''}: unknown; allowed: {list(params)}")


def validate(params: dict[str, Param], values: dict[str, Any], source: str = "") -> dict[str, Any]:
    """Check names and values; returns the converted values."""
    check_names(params, values, source)
    return {k: check_value(params[k], v) for k, v in values.items()}


def from_cli(p: Param | None, raw: str) -> Any:
    """A ``-p`` value: YAML, except that a str parameter keeps non-null text as written."""
    try:
        v = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if p is not None and p.base == "str" and v is not None and not isinstance(v, str):
        return raw
    return v


# Notebook metadata as JupyterLab 4 writes it for the ipykernel "python3" kernel, so opening a
# notebook in Lab changes nothing in git. Lab also writes language_info.version (the kernel's
# Python version, which differs between machines); ``clean`` drops it.
LAB_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                      "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                      "pygments_lexer": "ipython3"},
}


def check_committed(path: str | os.PathLike) -> list[str]:
    """Problems that make a notebook unfit to commit (outputs, counts, parameters cell,
    metadata other than what JupyterLab writes)."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for key, want in LAB_METADATA.items():
        if nb.metadata.get(key) != want:
            problems.append(f"notebook metadata {key}: got {nb.metadata.get(key)!r}; allowed: {want!r}")
    n = len(parameters_cells(nb))
    if n != 1:
        problems.append(f"{n} cells tagged 'parameters' (need exactly 1)")
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            problems.append(f"cell {i} has outputs or an execution count")
        if "papermill" in c.get("metadata", {}) or "injected-parameters" in c.get("metadata", {}).get("tags", []):
            problems.append(f"cell {i} carries papermill execution metadata")
    return problems
