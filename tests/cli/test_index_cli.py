"""`kgqa index train` and `kgqa index calibrate` on the sample manuals, then `kgqa ask` with the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import kgqa

pytestmark = pytest.mark.neo4j

ANSWERABLE = [
    "您好！请问分包进度款是按照审核后已完工程价款的多少比例支付的？",
    "项目部支付分包进度款时，农民工工资专用账户的拨付金额最低是多少？",
    "单笔超过五十万元的付款由谁审批？谢谢。",
    "分包单位申请预付款时需要提交什么保函？",
    "请问计量周期是怎么界定的？",
    "预付款从什么时候开始扣回，到什么时候全部扣回？",
    "财务部门在付款审批完成后多少个工作日内办理支付？",
]
UNANSWERABLE = [
    "您好，我们公司新招的员工问试用期最长能约定几个月，试用期工资不得低于多少？",
    "请问目前养老保险和医疗保险的单位缴费比例分别是多少？",
    "我们准备注册一家有限责任公司，工商登记需要准备哪些材料？",
    "请问职工带薪年休假的天数标准是怎么规定的？",
    "女职工生育享受多少天产假？生育津贴由谁支付？",
    "请问注册会计师考试专业阶段考几个科目，成绩有效期几年？",
    "外籍个人在境内居住满多少天构成居民个人？",
]


def _jsonl(path: Path, questions: list[str]) -> Path:
    path.write_text("\n".join(json.dumps({"question": q}, ensure_ascii=False) for q in questions), encoding="utf-8")
    return path


def test_train_then_calibrate_then_ask(clean_graph, kgqa_env, samples_dir: Path, tmp_path: Path):
    assert kgqa(["ingest", str(samples_dir / "manuals")], kgqa_env).returncode == 0

    run = kgqa(["index", "train", "--max-questions", "150", "--json"], kgqa_env)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    model_file = Path(report["path"])
    assert model_file == Path(kgqa_env["KGQA_HOME"]) / "retrieval" / "model.json" and model_file.is_file()
    assert report["questions"] > 100 and report["letters"] > 0
    held = report["heldout"]
    assert held["questions"] > 10
    # learning must help on clauses it never saw: the reranked order beats the fused pool's
    assert held["reranked_hit@5"] >= held["fused_hit@5"] and held["reranked_hit@1"] >= held["fused_hit@1"]
    assert report["reranker_weights"]["ask_cover"] > 0  # a clause holding the ask's words ranks up

    run = kgqa(
        [
            "index",
            "calibrate",
            "--answerable",
            str(_jsonl(tmp_path / "yes.jsonl", ANSWERABLE)),
            "--unanswerable",
            str(_jsonl(tmp_path / "no.jsonl", UNANSWERABLE)),
            "--plot",
            str(tmp_path / "curve.png"),
            "--json",
        ],
        kgqa_env,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    cal = json.loads(run.stdout)
    assert cal["answerable"] == len(ANSWERABLE) and cal["unanswerable"] == len(UNANSWERABLE)
    assert cal["answerable_refused"] <= 0.15 and cal["unanswerable_refused"] >= 0.5
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    model = json.loads(model_file.read_text(encoding="utf-8"))
    assert model["threshold"] == cal["threshold"] and "calibration" in model["meta"]

    # serving now answers the manuals and refuses what they do not cover
    asked = json.loads(kgqa(["ask", ANSWERABLE[0], "--json"], kgqa_env).stdout)
    assert asked["status"] == "VERIFIED" and asked["citations"]
    refused = json.loads(kgqa(["ask", "请问个体工商户的个人所得税按什么税率计算？", "--json"], kgqa_env).stdout)
    assert refused["status"] == "NO_EVIDENCE" and refused["citations"] == []

    # retraining keeps the calibration: its features do not depend on the reranker's scale
    run = kgqa(["index", "train", "--max-questions", "60", "--json"], kgqa_env)
    assert run.returncode == 0, run.stderr[-2000:]
    retrained = json.loads(model_file.read_text(encoding="utf-8"))
    assert retrained["threshold"] == cal["threshold"] and retrained["answerability"] == model["answerability"]


def test_calibrate_refuses_bad_input(clean_graph, kgqa_env, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "no question field"}\n', encoding="utf-8")
    run = kgqa(["index", "calibrate", "--answerable", str(bad), "--unanswerable", str(bad)], kgqa_env)
    assert run.returncode != 0
    assert "bad.jsonl:1" in run.stderr and "question" in run.stderr
    good = _jsonl(tmp_path / "good.jsonl", UNANSWERABLE)
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"question": "q"}\n{"question": "q", "gold_clause_ids": "a/1"}\n', encoding="utf-8")
    run = kgqa(["index", "calibrate", "--answerable", str(gold), "--unanswerable", str(good)], kgqa_env)
    assert run.returncode != 0
    assert "gold.jsonl:2" in run.stderr and "gold_clause_ids is not a list" in run.stderr
