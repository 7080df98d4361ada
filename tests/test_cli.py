"""Every command explains itself and fails in one line: each option has help, `--help` ends
with a worked example, and bad input prints `error: <parameter>: got <value>; allowed: ...`
(exit 2, no traceback)."""
import argparse
import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from bnnlib import cli
from bnnlib.train_config import FIELD_HELP, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
# command -> (module whose main() builds the parser, subcommands, one bad command line)
COMMANDS = {
    "bnnlib.train": ("bnnlib.train", [], ["--model", "resnet21", "--out", "unused"]),
    "bnnlib.complexity": ("bnnlib.complexity", [], ["resnet20", "--width-mult", "wide"]),
    "analysis.sweep": ("analysis.sweep", ["run", "status", "table"], ["status", "no_such_spec.yaml"]),
    "analysis.notebooks": ("analysis.notebooks", ["list", "describe", "run", "run-all", "gallery",
                                                  "check", "clean"], ["run", "complexity", "--preset", "huge"]),
    "analysis.complexity": ("analysis.complexity.__main__", [], ["scaling", "--factors", "0.5"]),
    "analysis.error_accumulation": ("analysis.error_accumulation.__main__", [], ["plan", "--preset", "huge"]),
    "analysis.gain_surface": ("analysis.gain_surface.__main__", [], ["plan", "--preset", "huge"]),
    "analysis.dwr": ("analysis.dwr.__main__", [], ["plan", "--tables", "table9"]),
    "analysis.regime": ("analysis.regime.__main__", ["status", "report"], ["report", "--spec", "nope"]),
    "analysis.dwr.imagenet": ("analysis.dwr.imagenet", [], ["plan", "--gpus", "0"]),
    "analysis.spent": ("analysis.spent", [], ["--preset", "nope"]),
}


def _parsers(module: str, argv: list[str], monkeypatch, capsys) -> tuple[list, str]:
    """Every Parser that main(argv + ['--help']) builds, and the help text it prints."""
    made = []
    init = cli.Parser.__init__

    def record(self, *a, **k):
        init(self, *a, **k)
        made.append(self)
    monkeypatch.setattr(cli.Parser, "__init__", record)
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).main([*argv, "--help"])
    assert exit_.value.code == 0
    return made, capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_and_help_ends_with_an_example(command, monkeypatch, capsys):
    module, subs, _ = COMMANDS[command]
    for argv in [[]] + [[s] for s in subs]:
        parsers, text = _parsers(module, argv, monkeypatch, capsys)
        assert parsers, f"{command} does not build its parser with bnnlib.cli.Parser"
        lines = text.rstrip().splitlines()
        assert lines[-2] == "example:" and lines[-1].startswith("  python -m "), (command, argv)
        for p in parsers:
            for action in p._actions:
                if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                    continue
                assert (action.help or "").strip(), f"{command} {argv}: {action.option_strings or action.dest} has no help"


def test_every_train_config_field_has_help():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields == set(FIELD_HELP), f"missing: {sorted(fields - set(FIELD_HELP))}, stale: {sorted(set(FIELD_HELP) - fields)}"


def test_complexity_help_says_what_it_counts(monkeypatch, capsys):
    _, text = _parsers("bnnlib.complexity", [], monkeypatch, capsys)
    assert "Counts the BNN" in text and "--fp counts the full-precision model" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_input_is_one_line_and_exit_2(command):
    argv = COMMANDS[command][2]
    res = subprocess.run([sys.executable, "-m", command, *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2, (command, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (command, res.stderr)
    assert ": got " in lines[0] and "; allowed: " in lines[0], lines[0]


@pytest.mark.parametrize("message,line", [
    ("argument --model: invalid choice: 'x' (choose from 'a', 'b')", "--model: got 'x'; allowed: 'a', 'b'"),
    ("argument --epochs: invalid int value: 'abc'", "--epochs: got 'abc'; allowed: an int"),
    ("the following arguments are required: --out", "--out: got nothing; allowed: a value (required; see --help)"),
    ("unrecognized arguments: --fast", "arguments: got --fast; allowed: the options listed by --help"),
])
def test_argparse_messages_become_one_line(message, line):
    assert cli._translate(message) == line
