"""Command lines that explain themselves and fail in one line.

Every ``python -m ...`` command of the project (``bnnlib.train``, ``bnnlib.complexity``,
``analysis.sweep``, ``analysis.notebooks``, each study's ``__main__``) builds its parser with
``Parser``: each option's help says its unit and allowed values and ends with its default,
``--help`` ends with one worked example, and bad input prints one line

    error: <parameter>: got <value>; allowed: ...

and exits 2, whether argparse or the code behind it (a ``ValueError``) found the problem.
"""
from __future__ import annotations

import argparse
import re
import sys

__all__ = ["Parser", "error_line", "fail", "EXIT_BAD_INPUT"]

EXIT_BAD_INPUT = 2


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the example's line breaks; ends each option's help with its default, unless the
    help already says it ('default ...', or 'none: ...' for what an unset option means)."""

    def _get_help_string(self, action):
        text = action.help or ""
        said = "default" in text.lower() or "none:" in text.lower() or "unset:" in text.lower()
        if said or action.default is argparse.SUPPRESS or (not action.option_strings and
                                                            action.nargs not in ("?", "*")):
            return text
        default = {None: "none", "": "''"}.get(action.default, "%(default)s") \
            if isinstance(action.default, (str, type(None))) else "%(default)s"
        return f"{text} (default: {default})"


# argparse's messages -> what the parameter allows
_PATTERNS = [
    (r"argument (?P<p>[^:]+): invalid choice: (?P<v>.+?) \(choose from (?P<a>.*)\)$", "{a}"),
    (r"argument (?P<p>[^:]+): invalid (?P<t>\w+) value: (?P<v>.+)$", "{article} {t}"),
    (r"argument (?P<p>[^:]+): expected (?P<a>.+ arguments?)$", "{a}"),
    (r"argument (?P<p>[^:]+): ignored explicit argument (?P<v>.+)$", "no value (a flag)"),
    (r"argument (?P<p>[^:]+): not allowed with argument (?P<a>.+)$", "not together with {a}"),
    (r"the following arguments are required: (?P<p>.+)$", "a value (required; see --help)"),
    (r"unrecognized arguments: (?P<v>.+)$", "the options listed by --help"),
    (r"ambiguous option: (?P<v>\S+) could match (?P<a>.+)$", "one of {a}"),
]


def _translate(message: str) -> str:
    """An argparse error message as '<parameter>: got <value>; allowed: ...'."""
    for pattern, allowed in _PATTERNS:
        m = re.match(pattern, message)
        if m:
            d = {k: v for k, v in m.groupdict().items() if v is not None}
            t = d.get("t", "")
            text = allowed.format(a=d.get("a", ""), t=t, article="an" if t[:1] in "aeiou" else "a")
            return f"{d.get('p', 'arguments').split('/')[-1]}: got {d.get('v', 'nothing')}; allowed: {text}"
    m = re.match(r"argument (?P<p>[^:]+): (?P<rest>.+)$", message)  # a converter's own message
    return f"{m['p'].split('/')[-1]}: {m['rest']}" if m else message


def error_line(exc: BaseException | str) -> str:
    """'error: ...' on one line (a multi-line message is joined with '; ')."""
    text = str(exc).strip()
    if text.startswith("error: "):
        text = text[len("error: "):]
    return "error: " + "; ".join(ln.strip() for ln in text.splitlines() if ln.strip())


def fail(exc: BaseException | str) -> int:
    """Print ``error_line(exc)`` to stderr and return the bad-input exit status (2)."""
    print(error_line(exc), file=sys.stderr)
    return EXIT_BAD_INPUT


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line and whose help ends with an example.

    ``example``: one worked command line, printed last by ``--help``. Subcommand parsers made
    with ``add_subparsers().add_parser`` are ``Parser`` too and may take their own example.
    """

    def __init__(self, *args, example: str | None = None, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        if example:
            kwargs["epilog"] = ((kwargs.get("epilog") or "").rstrip() + "\n\n" if kwargs.get("epilog")
                                else "") + f"example:\n  {example}"
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(EXIT_BAD_INPUT, error_line(_translate(message)) + "\n")
