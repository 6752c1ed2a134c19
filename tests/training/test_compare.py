"""The comparison report: computed deltas with honest verdicts, self-contained HTML, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgqa.errors import ConfigError
from training.compare import changes, compare, load_run


def _eval_dir(root: Path, name: str, f1: float, halluc: float, prediction: str, verified: bool) -> Path:
    folder = root / name
    folder.mkdir()
    aggregates = {"n": 2, "token_f1": f1, "hallucination_rate": halluc, "key_fact_accuracy": f1 / 2}
    metrics = {
        "model": {"model_id": f"tiny+{name}", "base": "tiny", "adapter": name, "backend": "transformers"},
        "test_sets": {"paraphrase": {"aggregates": aggregates, "composite": {"score": f1}}},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    rows = [
        {"id": "q1", "test_set": "paraphrase", "question": "存货如何计量？", "reference": "按成本计量[[CAS-1-存货/第五条]]。",
         "prediction": prediction, "citations": ["CAS-1-存货/第五条"], "verified": verified, "refusal": False,
         "unsupported": [] if verified else [{"kind": "amount"}]},
    ]
    (folder / "predictions.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return folder


def test_compare_reports_changes_with_direction(tmp_path):
    base = load_run(_eval_dir(tmp_path, "base", 0.10, 0.50, "存货<script>", False))
    sft = load_run(_eval_dir(tmp_path, "sft", 0.40, 0.60, "存货按成本计量[[CAS-1-存货/第五条]]。", True))
    delta = {c["metric"]: c for c in changes([base, sft], "paraphrase")}
    assert delta["token_f1"]["verdict"] == "better"
    assert delta["hallucination_rate"]["verdict"] == "worse"  # lower is better: a rise is reported as worse
    assert delta["token_f1"]["delta"] == pytest.approx(0.30)

    out = tmp_path / "report"
    summary = compare([base, sft], out)
    assert summary["models"] == ["tiny+base", "tiny+sft"]
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page
    assert "&lt;script&gt;" in page and "<script>" not in page  # model output is escaped
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "hallucination rate 0.500 → 0.600 (+0.100, worse)" in md
    assert (out / "compare_paraphrase.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_eval_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path / "nope")):
        load_run(tmp_path / "nope")
