"""``nvr.cli.common``: the command printed for a person to run nvr again works from
their shell."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from nvr.cli.common import nvr_command


def test_nvr_command_is_nvr_only_when_that_is_on_path(tmp_path: Path) -> None:
    venv_bin = tmp_path / "my venv" / "bin"
    venv_bin.mkdir(parents=True)
    script = venv_bin / "nvr"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # installed in a venv that is not activated: its absolute path, quoted for the shell
    assert nvr_command(str(script), path=str(elsewhere)) == shlex.quote(str(script))
    assert shlex.split(nvr_command(str(script), path=str(elsewhere))) == [str(script)]
    # activated (its bin on PATH)
    assert nvr_command(str(script), path=f"{elsewhere}:{venv_bin}") == "nvr"
    # another nvr first on PATH: not that one
    other = elsewhere / "nvr"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert nvr_command(str(script), path=f"{elsewhere}:{venv_bin}") == shlex.quote(str(script))
    # python -m nvr
    assert nvr_command("/x/nvr/__main__.py") == f"{shlex.quote(sys.executable)} -m nvr"
