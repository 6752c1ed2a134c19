"""The kgqa command line run as a script runs it, for the CLI tests: one copy for every file."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def kgqa(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m kgqa ARGS`` in ``env``; its exit code, stdout and stderr (never raises on failure)."""
    return subprocess.run(
        [sys.executable, "-m", "kgqa", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kgqa_json(args: list[str], env: dict[str, str], timeout: float = 600) -> Any:
    """``kgqa ARGS --json``, which must succeed: its parsed output."""
    run = kgqa([*args, "--json"], env, timeout)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)
