"""The rszoo command line: help, listing, dry runs, exit codes and error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rszoo.cli.main import build_parser, main

COMMANDS = ["list", "synth", "train", "eval", "predict", "export", "publish", "demo", "cot"]


def test_console_script_help():
    exe = Path(sys.executable).parent / "rszoo"  # installed next to the interpreter by `pip install -e .`
    assert exe.is_file(), "the rszoo console script is not installed"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rszoo " + command in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_list_kinds(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "rsground_r1-3b" in out and "visual grounding" in out
    assert main(["list", "rewards"]) == 0
    assert "positional" in capsys.readouterr().out
    assert main(["list", "recipes", "rsground_r1/*"]) == 0
    assert "recipes/rsground_r1/tiny_grpo.yaml" in capsys.readouterr().out
    assert main(["list", "models", "zzz*"]) == 0


def test_train_dry_run_prints_the_resolved_recipe(capsys):
    assert main(["train", "recipes/rsground_r1/tiny_grpo.yaml", "--dry-run", "trainer.max_steps=7"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and "output_dir: runs/rsground_r1_tiny_grpo" in out


def test_bad_input_exits_2_with_a_message(capsys, tmp_path):
    assert main(["train", "recipes/rsground_r1/tiny_grpo.yaml", "trainer.max_stepz=1", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "rszoo train: error:" in err and "max_stepz" in err and "max_steps" in err
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "no-model"), "--data", "x.jsonl"]) == 2
    assert "no model folder" in capsys.readouterr().err
    assert main(["publish", str(tmp_path), "me/x", "--dry-run"]) == 2
    assert "not an rszoo model folder" in capsys.readouterr().err


def test_parser_lists_model_commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)
