"""Wall time and peak memory of each stage of a training pipeline (`make train-real`).

Each stage is a command run as a child process; its wall time and peak resident memory are appended
to a JSON file in the run folder, so a run interrupted in a later stage keeps the figures of the
stages it finished, and a rerun adds to them.

The peak is the child's ``VmHWM`` (``/proc/PID/status``), read every 50 ms while it runs. Not
``wait4``'s ``ru_maxrss``: Linux carries the high-water mark of the process that forked the child
across ``exec``, so a stage run from a big process (a test worker holding models) reported that
process's memory, not its own.

Usage::

    python -m training.stages run --record RUN/stages.json --name sft -- kgqa train sft ...
    python -m training.stages table RUN/stages.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def run_stage(record: Path, name: str, command: list[str], ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run ``command``, append ``{name, seconds, peak_rss_mb, exit_code, ...}`` to ``record``.

    Returns the command's exit code (0 when it is one of ``ok_codes``).
    """
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    watcher = _PeakWatcher(proc.pid)
    proc.wait()
    seconds = time.perf_counter() - started
    entry = {
        "name": name,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(watcher.stop() / 1024, 1),
        "exit_code": proc.returncode,
        "started_at": started_at,
        "command": command,
    }
    stages = read_stages(record)
    stages.append(entry)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(stages, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0 if proc.returncode in ok_codes else proc.returncode


class _PeakWatcher:
    """Follows a child's ``VmHWM`` (peak resident set, KiB) from a thread until :meth:`stop`."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self._interval = interval_s
        self._peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stage-peak-rss", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._path.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self._peak = max(self._peak, int(line.split()[1]))
                    return
        except (OSError, ValueError, IndexError):  # the child has exited (or is a zombie)
            return

    def _run(self) -> None:
        while not self._done.is_set():
            self._read()
            self._done.wait(self._interval)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self._peak


def read_stages(record: Path) -> list[dict[str, Any]]:
    return json.loads(record.read_text(encoding="utf-8")) if record.is_file() else []


def table(stages: list[dict[str, Any]]) -> str:
    """The stages as a text table, with the total wall time and the largest peak."""
    lines = [f"{'stage':<12} {'wall time':>10} {'peak RSS':>10}  exit", "-" * 42]
    for s in stages:
        lines.append(
            f"{s['name']:<12} {_duration(s['seconds']):>10} {s['peak_rss_mb'] / 1024:>8.2f} GB  {s['exit_code']}"
        )
    if stages:
        total = sum(s["seconds"] for s in stages)
        peak = max(s["peak_rss_mb"] for s in stages)
        lines += ["-" * 42, f"{'total':<12} {_duration(total):>10} {peak / 1024:>8.2f} GB"]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.stages", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run one stage and record it")
    run.add_argument("--record", type=Path, required=True)
    run.add_argument("--name", required=True)
    run.add_argument("--ok", default="0", help="comma-separated exit codes that count as success")
    run.add_argument("command", nargs=argparse.REMAINDER)
    show = sub.add_parser("table", help="print the recorded stages")
    show.add_argument("record", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "table":
        print(table(read_stages(args.record)))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    return run_stage(args.record, args.name, command, tuple(int(c) for c in args.ok.split(",")))


if __name__ == "__main__":
    sys.exit(main())
