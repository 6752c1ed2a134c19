"""Console session lookups: what every console request pays before its page (SessionStore.get).

Every console request looks its session up and restarts its idle clock. Sessions live in SQLite:
in memory for a server built in code, in a WAL file under ``$KGQA_HOME/console`` for `kgqa serve`
(shared by its workers). This prints get() latency for the memory store and the file store, in
one process, so the figures compare on the same machine and load.

    .venv/bin/python bench/bench_sessions.py [--n 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.console.config import ConsoleConfig  # noqa: E402
from serving.console.sessions import SessionStore  # noqa: E402
from serving.types import Caller, Role  # noqa: E402


def measure(store: SessionStore, n: int) -> dict:
    _, cookie = store.create(Caller("key-bench", Role.AUDITOR))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert store.get(cookie) is not None
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return {"p50_us": round(statistics.median(times), 1), "p99_us": round(times[int(0.99 * (n - 1))], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgqa-bench-sessions-") as tmp:
        result = {
            "memory": measure(SessionStore(ConsoleConfig()), args.n),
            "file (kgqa serve)": measure(SessionStore(ConsoleConfig(state_dir=tmp)), args.n),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, row in result.items():
        print(f"  {name:20s} get() p50 {row['p50_us']:8.1f} µs   p99 {row['p99_us']:8.1f} µs")


if __name__ == "__main__":
    main()
