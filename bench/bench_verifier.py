"""Answers/second of ``Verifier.verify_against`` (the GRPO reward's inner loop), pure, no Neo4j.

Builds a synthetic settlement manual (clauses with deadlines, amounts, rates, parties and
obligations, shaped like the corpus' articles) and a few hundred answers over it: verbatim quotes,
paraphrases (十四日 -> 14天, 五十万元 -> 50万元, 百分之三 -> 3%) and answers with one planted error
(wrong number, wrong party, flipped obligation, invented clause id). Prints throughput with the
clause-fact cache warm (GRPO: one evidence batch, many completions) and cold (a fresh verifier
per answer), and, as a sanity check, how many answers of each kind verified. Usage:

    .venv/bin/python bench/bench_verifier.py [--clauses 40] [--answers 400] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from kg.normalize import chinese_article
from kg.verifier import EvidenceClause, TripleFact, Verifier

DOC = "JSGL"
TITLE = "工程价款结算管理办法"
PARTIES = ["项目部", "财务部门", "施工单位", "监理单位", "分包单位", "合同管理部门"]
CN = {
    3: "三",
    5: "五",
    7: "七",
    10: "十",
    14: "十四",
    15: "十五",
    20: "二十",
    30: "三十",
    50: "五十",
    60: "六十",
}


def make_clauses(n: int, rng: random.Random) -> dict[str, EvidenceClause]:
    clauses = {}
    for i in range(1, n + 1):
        number = chinese_article(i)
        days, wan, pct = rng.choice([7, 10, 14, 15, 20, 30]), rng.choice([5, 10, 20, 50]), rng.choice([3, 5])
        actor, other = rng.sample(PARTIES[:3], 2)
        text = (
            f"{number} {actor}应当在收到{other}提交的结算资料后{CN.get(days, days)}日内审核完毕，"
            f"并报财务部门复核。单笔超过{CN.get(wan, wan)}万元的付款须经分管副总经理审批。"
            f"质量保证金按结算总价的百分之{CN[pct]}预留。未经审批的付款，财务部门不得支付。"
        )
        triples = [
            TripleFact(actor, "期限", f"{days}日", {"surface": f"{CN.get(days, days)}日内"}, "party"),
            TripleFact("付款", "阈值", f"{wan * 10000}元", {"surface": f"超过{CN.get(wan, wan)}万元"}),
            TripleFact("质量保证金", "比例", f"{pct}%", {"surface": f"百分之{CN[pct]}"}),
            TripleFact("财务部门", "不得", "支付未经审批的付款", {}, "party"),
        ]
        cid = f"{DOC}/{number}"
        clauses[cid] = EvidenceClause(
            cid, 1, "active", DOC, TITLE, 1, number, text, ["第三章 结算管理"], i, i, triples
        )
    return clauses


def make_answers(clauses: dict[str, EvidenceClause], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``(kind, answer)`` pairs; kind is ``faithful`` or ``planted``."""
    ids = list(clauses)
    answers = []
    for k in range(n):
        cid = rng.choice(ids)
        c = clauses[cid]
        actor, days = c.triples[0].subject, int(c.triples[0].object[:-1])
        wan, pct = int(c.triples[1].object[:-1]) // 10000, int(c.triples[2].object[:-1])
        m = f"[[{cid}]]"
        variant = k % 8
        if variant == 0:
            body = c.text.split(" ", 1)[1]
            answers.append(("faithful", body.replace("。", f"{m}。", 1)))
        elif variant == 1:
            answers.append(("faithful", f"根据规定，{actor}应在收到结算资料后{days}天内审核完毕{m}。"))
        elif variant == 2:
            answers.append(
                (
                    "faithful",
                    f"超过{wan}万元的单笔付款须经分管副总经理审批{m}；质量保证金按结算总价的{pct}%预留{m}。",
                )
            )
        elif variant == 3:
            answers.append(("planted", f"{actor}应当在收到结算资料后{days + 1}日内审核完毕{m}。"))
        elif variant == 4:
            answers.append(("planted", f"单笔超过{wan + 7}万元的付款须经分管副总经理审批{m}。"))
        elif variant == 5:
            answers.append(("planted", f"未经审批的付款，财务部门可以支付{m}。"))
        elif variant == 6:
            answers.append(("planted", f"{PARTIES[4]}应当在收到结算资料后{days}日内审核完毕{m}。"))
        else:
            answers.append(("planted", f"质量保证金按结算总价的{pct}%预留[[{DOC}/第九百条]]。"))
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clauses", type=int, default=40)
    parser.add_argument("--answers", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the answers (warm cache)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    clauses = make_clauses(args.clauses, rng)
    answers = make_answers(clauses, args.answers, rng)

    verifier = Verifier()
    verifier.verify_against(
        "项目部应当审核[[X/第一条]]。", clauses
    )  # load the segmenter's dictionary outside the timing
    outcomes = {"faithful": [0, 0], "planted": [0, 0]}
    start = time.perf_counter()
    for _ in range(args.repeat):
        for kind, answer in answers:
            result = verifier.verify_against(answer, clauses)
            outcomes[kind][0] += result.verified
            outcomes[kind][1] += 1
    warm = args.repeat * len(answers) / (time.perf_counter() - start)

    start = time.perf_counter()
    for _, answer in answers:
        Verifier().verify_against(answer, clauses)
    cold = len(answers) / (time.perf_counter() - start)

    report = {
        "answers": len(answers),
        "clauses": len(clauses),
        "answers_per_s_warm_cache": round(warm, 1),
        "answers_per_s_cold_cache": round(cold, 1),
        "faithful_verified": f"{outcomes['faithful'][0]}/{outcomes['faithful'][1]}",
        "planted_verified": f"{outcomes['planted'][0]}/{outcomes['planted'][1]}",
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"verify_against over {len(answers)} answers x {args.repeat}, {len(clauses)} clauses")
    print(f"  warm clause cache : {warm:8.1f} answers/s")
    print(f"  cold clause cache : {cold:8.1f} answers/s")
    print(f"  faithful verified : {report['faithful_verified']} (should be all)")
    print(f"  planted verified  : {report['planted_verified']} (should be none)")


if __name__ == "__main__":
    main()
