"""Bootstrap intervals: a small test set's numbers come with their uncertainty, and the report
calls a change inside it no difference."""

from __future__ import annotations

from training.compare import EvalRun, changes
from training.metrics.bootstrap import bootstrap_interval, intervals, paired_difference, record_values


def _row(i: int, kf: float, hallucinated: bool, answerable: bool = True, refusal: bool = False) -> dict:
    return {"id": f"q{i}", "test_set": "paraphrase", "answerable": answerable, "refusal": refusal,
            "verified": not hallucinated, "unsupported_count": int(hallucinated),
            "metrics": {"key_fact_recall": kf, "token_f1": kf, "citation_precision": 1.0, "citation_recall": kf}}  # fmt: skip


def test_interval_holds_the_mean_and_narrows_with_more_records():
    small = bootstrap_interval([0, 1] * 10)
    large = bootstrap_interval([0, 1] * 200)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 2
    assert bootstrap_interval([]) is None


def test_record_values_follow_the_aggregates_eligibility():
    assert record_values(_row(0, 0.5, True))["hallucination_rate"] == 1.0
    refusal = record_values(_row(1, 0.0, False, answerable=False, refusal=True))
    assert refusal["correct_refusal_rate"] == 1.0 and "hallucination_rate" not in refusal
    found = intervals([_row(i, i % 2, i % 3 == 0) for i in range(30)])
    assert found["hallucination_rate"]["n"] == 30 and found["key_fact_accuracy"]["low"] < 0.5


def test_paired_difference_separates_noise_from_a_real_change():
    base = [_row(i, float(i % 2), True) for i in range(40)]
    same_but_shuffled = [_row(i, float((i + 1) % 2 if i < 4 else i % 2), True) for i in range(40)]
    better = [_row(i, 1.0, False) for i in range(40)]
    assert not paired_difference(base, same_but_shuffled, "key_fact_accuracy")["significant"]
    found = paired_difference(base, better, "hallucination_rate")
    assert found["significant"] and found["delta"] == -1.0 and found["n"] == 40


def test_report_calls_a_change_inside_the_interval_no_difference():
    def run(name, rows):
        agg = {
            k: sum(r[k] for r in map(record_values, rows)) / len(rows)
            for k in ("key_fact_accuracy", "hallucination_rate")
        }
        return EvalRun(name, None, {"test_sets": {"paraphrase": {"aggregates": agg}}}, rows)  # type: ignore[arg-type]

    base = run("base", [_row(i, float(i % 2), i % 2 == 0) for i in range(20)])
    sft = run("sft", [_row(i, float(i % 2 if i != 1 else 0), False) for i in range(20)])
    verdicts = {c["metric"]: c["verdict"] for c in changes([base, sft], "paraphrase")}
    assert verdicts["key_fact_accuracy"] == "no difference"  # one question of twenty
    assert verdicts["hallucination_rate"] == "better"  # ten of twenty
