"""The command line: every subcommand has --help; `python -m midlevel` works; synth -> validate -> features."""
from __future__ import annotations

import subprocess
import sys

import pytest

from midlevel.cli import build_parser, main


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_core_subcommands_present():
    assert {"validate", "features", "synth", "demo"} <= set(subcommands())


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: midlevel " + command)


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "midlevel", "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and "validate" in result.stdout


def test_synth_validate_features(tmp_path, capsys):
    out = tmp_path / "world"
    assert main(["synth", "--out", str(out), "--n-clips", "6", "--seed", "1", "--duration", "3",
                 "--quiet"]) == 0
    assert main(["validate", str(out / "spec.yaml"), "--quiet"]) == 0
    assert "clips: 6" in capsys.readouterr().out
    cache = tmp_path / "cache"
    assert main(["features", str(out / "spec.yaml"), "--cache", str(cache), "--quiet"]) == 0
    assert "6 computed, 0 reused" in capsys.readouterr().out
    assert len(list(cache.rglob("*.npy"))) == 6
    assert main(["features", str(out / "spec.yaml"), "--cache", str(cache), "--quiet"]) == 0
    assert "0 computed, 6 reused" in capsys.readouterr().out
