"""Maven from Python: the one way kgqa runs ``mvn``, retried when Maven Central throttles.

Two things come from Maven Central at build time: the Neo4j launcher's jars (``kg/launcher``)
and the ONNX embedding model (``serving/retrieval/model_files.py``). Central answers bursts with
HTTP 429 or drops connections; both are worth a few patient retries, anything else is not.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import structlog
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from kgqa.errors import KgqaError

log = structlog.get_logger(__name__)


class _MavenBusy(Exception):
    """Maven Central throttled or dropped us; the command is retried."""


def run_maven(args: Sequence[str], cwd: Path, *, what: str, error: type[KgqaError]) -> None:
    """Run ``mvn -q -B ARGS`` in ``cwd``; retry (4 tries, 5-60 s apart) on throttling or transfer errors.

    Args:
        args: Maven arguments after ``-q -B`` (goals, ``-D`` properties).
        cwd: working directory (a project folder, or any folder for plugin goals).
        what: what the command does, for the error message ("building the Neo4j launcher").
        error: the kgqa error to raise; its message carries the tail of Maven's output.

    Raises:
        error: Maven is missing, or failed for a reason retrying does not fix, or kept failing.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise error(f"{what} needs Maven (mvn), which is not installed; install it (apt-get install maven)")
    try:
        _run([mvn, "-q", "-B", *args], cwd, what)
    except _MavenBusy as exc:
        raise error(f"{what} failed: Maven Central kept refusing (mvn {' '.join(args)}):\n{exc}") from exc
    except subprocess.CalledProcessError as exc:
        raise error(f"{what} failed (mvn {' '.join(args)} in {cwd}):\n{exc.output}") from exc


@retry(
    retry=retry_if_exception_type(_MavenBusy),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=5, max=60),
    reraise=True,
)
def _run(cmd: list[str], cwd: Path, what: str) -> None:
    log.info("maven.run", what=what, cwd=str(cwd))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        if "429" in tail or "Could not transfer" in tail or "timed out" in tail.lower():
            raise _MavenBusy(tail)
        raise subprocess.CalledProcessError(proc.returncode, cmd, output=tail)
