"""Build, start, stop and inspect the local embedded Neo4j used for development and tests.

The server is the small Java launcher in ``kg/launcher`` (Neo4j Community from Maven Central,
Bolt on 127.0.0.1, auth off because the socket is loopback-only). Production never uses this:
it points ``KGQA_NEO4J_URI`` at a real Neo4j. Each instance keeps all its files under its own
``home`` (store, logs, pid file), so two instances with different homes and ports never touch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from neo4j import GraphDatabase

from kg.maven import run_maven
from kgqa.errors import LauncherError

log = structlog.get_logger(__name__)

LAUNCHER_DIR = Path(__file__).resolve().parent / "launcher"
MAIN_CLASS = "io.kgqa.neo4j.Launcher"
# The same module openings Neo4j's own launch scripts pass; without them Netty and the page cache
# fall back to slower paths or fail on Java 17.
JVM_OPENS = [
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it): for a local Neo4j of a test or a bench.

    Another process may take it before it is used; the launcher's start then fails clearly.
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerStatus:
    """What ``kgqa neo4j status`` reports."""

    running: bool
    pid: int | None
    bolt_uri: str
    home: str
    bolt_answers: bool


class LocalNeo4j:
    """One local Neo4j instance identified by its home folder.

    Args:
        home: folder that holds the store, logs, pid file and console log of this instance.
        bolt_port: loopback port for Bolt.
        heap_mb: JVM heap; small by default because the test corpora are small.
        pagecache_mb: Neo4j page cache; left alone Neo4j would take half of RAM.
        launcher_dir: the Maven project of the Java launcher.
    """

    def __init__(
        self,
        home: Path,
        bolt_port: int = 7687,
        *,
        heap_mb: int = 768,
        pagecache_mb: int = 128,
        launcher_dir: Path = LAUNCHER_DIR,
    ) -> None:
        self.home = Path(home).resolve()
        self.bolt_port = bolt_port
        self.heap_mb = heap_mb
        self.pagecache_mb = pagecache_mb
        self.launcher_dir = launcher_dir

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "neo4j.pid"

    @property
    def console_log(self) -> Path:
        return self.home / "logs" / "console.log"

    # -- build -------------------------------------------------------------------------------
    def classpath(self) -> str:
        target = self.launcher_dir / "target"
        return f"{target / 'classes'}{os.pathsep}{target / 'lib' / '*'}"

    def is_built(self) -> bool:
        target = self.launcher_dir / "target"
        return (target / "classes" / "io" / "kgqa" / "neo4j" / "Launcher.class").exists() and any(
            (target / "lib").glob("neo4j-5.*.jar")
        )

    def build(self, *, force: bool = False) -> None:
        """Compile the launcher and copy Neo4j's jars with Maven (first time only)."""
        if self.is_built() and not force:
            return
        run_maven(
            ["-DskipTests", "package"],
            self.launcher_dir,
            what="building the Neo4j launcher",
            error=LauncherError,
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def bolt_answers(self, timeout: float = 2.0) -> bool:
        try:
            with GraphDatabase.driver(self.bolt_uri, auth=None, connection_timeout=timeout) as driver:
                driver.verify_connectivity()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False

    def status(self) -> ServerStatus:
        pid = self._read_pid()
        return ServerStatus(
            running=pid is not None,
            pid=pid,
            bolt_uri=self.bolt_uri,
            home=str(self.home),
            bolt_answers=pid is not None and self.bolt_answers(),
        )

    def start(self, *, timeout: float = 180.0) -> ServerStatus:
        """Start the server in the background and return once Bolt answers.

        Idempotent: an instance already running in this home is left alone.
        """
        pid = self._read_pid()
        if pid is not None:
            if self.bolt_answers():
                return self.status()
            self._wait_for_bolt(pid, timeout)
            return self.status()
        self.build()
        java = shutil.which("java")
        if java is None:
            raise LauncherError(
                "Java 17 is not installed; install it (apt-get install openjdk-17-jre-headless)"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            java,
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseSerialGC",
            *JVM_OPENS,
            "-cp",
            self.classpath(),
            MAIN_CLASS,
            str(self.home),
            str(self.bolt_port),
            str(self.pagecache_mb),
        ]
        with open(self.console_log, "ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        log.info("neo4j.start", pid=proc.pid, bolt=self.bolt_uri, home=str(self.home))
        self._wait_for_bolt(proc.pid, timeout, proc)
        return self.status()

    def _wait_for_bolt(self, pid: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise LauncherError(
                    f"Neo4j exited with code {proc.returncode} during start-up; see {self.console_log}:\n"
                    + self._console_tail()
                )
            if self.bolt_answers():
                return
            time.sleep(0.5)
        raise LauncherError(
            f"Neo4j (pid {pid}) did not answer on {self.bolt_uri} within {timeout:.0f}s; see {self.console_log}"
        )

    def _console_tail(self, n: int = 3000) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, *, timeout: float = 60.0) -> bool:
        """Stop the server cleanly (SIGTERM runs Neo4j's shutdown hook); SIGKILL only as a last resort.

        Returns:
            True if a running server was stopped, False if none was running.
        """
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.2)
        else:
            log.warning("neo4j.stop.kill", pid=pid)
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        log.info("neo4j.stop", pid=pid)
        return True


def _alive(pid: int) -> bool:
    # Reap it if it is our child, so it does not linger as a zombie that still "exists".
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
