"""How to call the `clienthub` command from the user's shell, for hints the CLI prints.

The README's first command installs into ``.venv`` and never activates it, so a hint that says
plain ``clienthub users passwd admin`` fails with "command not found" in the newcomer's shell.
The hints name the script that is actually installed instead, unless plain ``clienthub`` on PATH
is this very installation (an activated venv, the Docker image).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

NAME = "clienthub"


def cli_command() -> str:
    """``clienthub`` when PATH finds this installation's script, else that script's path:
    relative to the working directory when inside it (``.venv/bin/clienthub``)."""
    script = Path(sys.executable).parent / NAME
    if not script.is_file():  # not installed as a package (python -m hub from a checkout)
        return NAME
    found = shutil.which(NAME)
    if found and os.path.samefile(found, script):
        return NAME
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
