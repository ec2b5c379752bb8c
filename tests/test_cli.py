"""The ``hf-slm`` entry point: lazy stage imports, the command table, one exit-code mechanism for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from hf_slm import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sklearn", "datasets", "pandas", "scipy", "matplotlib")


def test_help_imports_no_heavy_module():
    """``hf-slm --help`` and ``hf-slm fit --help`` import none of torch, transformers, scikit-learn, pandas."""
    code = (
        "import json, sys\n"
        "from hf_slm.cli import main\n"
        "seen = {}\n"
        "for argv in (['--help'], ['fit', '--help'], ['plan', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        f"    seen[argv[0]] = sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))\n"
        "sys.stdout.write('\\n' + json.dumps(seen))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    seen = json.loads(lines[-1])
    assert seen == {"--help": [], "fit": [], "plan": []}
    help_text = "\n".join(lines[:-1])
    for name in cli.COMMANDS:
        assert name in help_text
    assert "--law" in help_text and "--all-runs" in help_text


def test_command_table_matches_what_the_stages_register():
    """Every command a stage registers is in ``COMMANDS`` with the same one-line help, and vice versa."""
    parser = cli.build_parser(full=True)
    sub = next(a for a in parser._actions if a.dest == "command")
    registered = {action.dest: action.help for action in sub._choices_actions}
    assert registered == {name: help_text for name, (_, help_text) in cli.COMMANDS.items()}
    for name, (module, _) in cli.COMMANDS.items():
        lazy = cli.build_parser(name)
        lazy_sub = next(a for a in lazy._actions if a.dest == "command")
        assert len(lazy_sub.choices[name]._actions) > 1, (name, module)  # the stage's parser, not a placeholder


@pytest.fixture()
def fake_stage(monkeypatch):
    """A stage module whose ``boom`` command raises what ``--raise`` names."""
    module = types.ModuleType("hf_slm_fake_stage")
    errors = {"value": ValueError("bad value in x.yaml"), "missing": FileNotFoundError("no such file: y.csv"),
              "exit": SystemExit("error: --flag needs a value"), "network": ConnectionError("Hub unreachable"),
              "bug": RuntimeError("a bug"), "ok": None}

    def boom(args):
        if errors[args.raise_]:
            raise errors[args.raise_]
        return 0

    def register(subparsers):
        p = subparsers.add_parser("boom", help="raise something")
        p.add_argument("--raise", dest="raise_", choices=sorted(errors), required=True)
        p.set_defaults(func=boom)

    module.register = register
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.COMMANDS, "boom", (module.__name__, "raise something"))


@pytest.mark.parametrize(("kind", "code", "message"), [
    ("value", 2, "hf-slm boom: error: bad value in x.yaml"),
    ("missing", 2, "hf-slm boom: error: no such file: y.csv"),
    ("exit", 2, "hf-slm boom: error: --flag needs a value"),
    ("network", 1, "hf-slm boom: error: Hub unreachable"),
    ("ok", 0, ""),
])
def test_one_exit_code_mechanism(fake_stage, capsys, kind, code, message):
    assert cli.main(["boom", "--raise", kind]) == code
    err = capsys.readouterr().err
    assert err.strip() == message


def test_bugs_keep_their_traceback_and_usage_errors_exit_2(fake_stage, capsys):
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["boom", "--raise", "bug"])
    for argv in (["boom"], ["nonsense"], ["fit"], ["fit", "runs.csv", "--delta", "-1"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2, argv
    capsys.readouterr()


def test_real_commands_exit_2_on_bad_input(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{")
    assert cli.main(["fit", str(tmp_path / "missing.csv")]) == 2
    assert cli.main(["plan", str(tmp_path / "bad.json"), "--loss", "3"]) == 2
    assert cli.main(["train", "--config", str(tmp_path)]) == 2  # a directory given as the YAML config
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"hf-slm fit: error: run table {tmp_path / 'missing.csv'} does not exist" in err
    assert f"hf-slm plan: error: {tmp_path / 'bad.json'}: not valid JSON" in err
    assert "hf-slm train: error: " in err and str(tmp_path) in err
