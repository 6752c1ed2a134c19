"""`python -m training.stages`: each stage's wall time and peak memory, kept across stages and reruns."""

from __future__ import annotations

import json
import sys

from training.stages import main, read_stages, run_stage, table


def test_stages_record_time_memory_and_exit_codes(tmp_path, capsys):
    record = tmp_path / "run" / "stages.json"
    grow = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.3)"
    assert run_stage(record, "big", [sys.executable, "-c", grow]) == 0
    assert run_stage(record, "ingest", [sys.executable, "-c", "raise SystemExit(3)"], ok_codes=(0, 3)) == 0
    assert (
        main(
            [
                "run",
                "--record",
                str(record),
                "--name",
                "bad",
                "--",
                sys.executable,
                "-c",
                "raise SystemExit(2)",
            ]
        )
        == 2
    )
    stages = read_stages(record)
    assert [s["name"] for s in stages] == ["big", "ingest", "bad"]
    assert [s["exit_code"] for s in stages] == [0, 3, 2]
    assert stages[0]["peak_rss_mb"] > 250 and stages[1]["peak_rss_mb"] < 200  # the child's own peak, not ours
    assert stages[0]["seconds"] >= 0.3
    text = table(stages)
    assert "big" in text and "total" in text
    assert main(["table", str(record)]) == 0 and "bad" in capsys.readouterr().out
    assert json.loads(record.read_text())[0]["command"][0] == sys.executable
