"""Retrieval and answers on real questions: plain BM25 beside each stage of kgqa, same graph, same run.

Starts its own Neo4j (own data dir, free port) and, in two phases:

1. ingests the 47 Markdown files of ../shared/corpus/cas-all (the 42 accounting standards and
   more) and asks the real consultation letters of ../shared/eval/dev (plus the questions of its
   two 实施问答 pages) and eval/unanswerable_letters.jsonl. Rows: plain BM25 over clauses (jieba
   tokens, no stop words: the floor), kgqa's first stage (the fused pool's order), the reranked
   order without refusal, the full pipeline with refusal, and the answers of the service (the
   citations an extractive answer carries, as ``kgqa ask --batch`` returns them); then the same
   rows for eval/heldout_letters.jsonl, letters written after the packaged model was frozen, which
   ``--train`` and ``--calibrate`` never see;
2. ingests the laws and standards of ../shared/corpus and asks eval/questions.jsonl (76 short
   questions written here) through the full pipeline.

It prints document- and article-level hit@1/@5, the share of answerable letters refused, the share
of unanswerable ones refused, and retrieval + rerank latency (p50/p95). Each figure comes with its
95% bootstrap interval over the items it is a mean of (how many is printed under each table: the
dev letters are few, and a target inside the interval is neither met nor missed by the figure),
and the full pipeline's gain over plain BM25 on document and article hit@5 with the interval of
the per-letter differences (``significant`` when it excludes 0). With ``--calibrate`` it
first tunes the reranker's dense prior on the answerable letters (the share of the dense order
the final score keeps, picked from a short grid by leave-one-out mean reciprocal rank of the cited
articles and standards), then calibrates refusal on all letters (serving/retrieval/calibration.py: leave-one-out
probabilities, the operating point that refuses the most unanswerable letters within
``--max-answerable-refused`` of the answerable ones), writes the curve to
``bench/out/refusal_curve.png`` and reports the leave-one-out rates beside the in-sample rows;
``--write-model FILE`` saves the model it served with (how serving/retrieval/model.json is made:
``--train --calibrate --write-model serving/retrieval/model.json``). Usage:

    .venv/bin/python bench/bench_retrieval.py [--json] [--train] [--calibrate] [--write-model FILE]
        [--model FILE] [--no-tidy] [--no-answers] [--misses]

``--misses`` lists, under each table, every answerable item the full pipeline misses at hit@5:
where its gold stands in the first stage's pool and in the reranked order (0-based; None: not
there), its answerability and its ask as parsed (``misses`` in the JSON, always).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from devsets import (  # noqa: E402
    Cited,
    Item,
    answer_sets,
    gold_sets,
    hits,
    load_heldout,
    load_letters,
    load_tidy,
    load_unanswerable,
    paired_gain,
    score_rows,
    shared_dir,
)

from kg.local_server import free_port

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"


class PlainBm25:
    """The floor: BM25 over each active clause's text, jieba tokens, nothing else."""

    def __init__(self, clauses) -> None:
        import bm25s
        import jieba

        self._jieba = jieba.Tokenizer()
        self._ids = [c.clause_id for c in clauses]
        self._bm25 = bm25s.BM25()
        self._bm25.index([self._tokens(c.text) or [""] for c in clauses], show_progress=False)

    def _tokens(self, text: str) -> list[str]:
        return [t for t in self._jieba.lcut(text) if t.strip()]

    def rank(self, question: str, k: int = 5) -> list[str]:
        vocab = self._bm25.vocab_dict
        query = [t for t in self._tokens(question) if t in vocab]
        if not query:
            return []
        ids, scores = self._bm25.retrieve([query], k=k, show_progress=False, n_threads=1)
        return [self._ids[int(i)] for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


def _cited(index, clause_ids: list[str]) -> list[Cited]:
    out = []
    for cid in clause_ids:
        rec = index.clauses.get(cid)
        if rec is not None:
            out.append(Cited(cid, rec.doc_title, rec.number))
    return out


def _evaluate(retriever, index, items: list[Item], service=None) -> tuple[dict, list[dict]]:
    """Rows for each stage, and the answerable items the full pipeline misses at hit@5."""
    bm25 = PlainBm25(list(index.clauses.values()))
    stages: dict[str, dict[str, list[Cited]]] = {"plain BM25": {}, "first stage": {}, "reranked": {}}
    refused: dict[str, bool] = {}
    full: dict[str, list[Cited]] = {}  # the full pipeline's citations: the reranked top, none when refused
    misses: list[dict] = []
    latencies = []
    for item in items:
        stages["plain BM25"][item.id] = _cited(index, bm25.rank(item.question))
        t0 = time.perf_counter()
        ranked = retriever.rank(item.question)
        latencies.append((time.perf_counter() - t0) * 1000)
        stages["first stage"][item.id] = _cited(index, [f.clause_id for f in ranked.fused[:5]])
        stages["reranked"][item.id] = _cited(index, [c.clause_id for c in ranked.candidates[:5]])
        refused[item.id] = not ranked.evidence
        full[item.id] = [] if refused[item.id] else stages["reranked"][item.id]
        if item.answerable:
            miss = _miss(item, index.clauses, ranked, full[item.id])
            if miss is not None:
                misses.append(miss)
    rows = {name: score_rows(items, cited, None) for name, cited in stages.items()}  # no refusal there
    rows["full (with refusal)"] = score_rows(items, full, refused)
    rows["full (with refusal)"]["vs plain BM25"] = {
        metric: paired_gain(items, stages["plain BM25"], full, metric) for metric in ("doc@5", "art@5")
    }
    if service is not None:
        answers, answer_refused = {}, {}
        from serving.types import Caller, Role

        caller = Caller("bench", Role.ADMIN)
        for item in items:
            result = service.ask(item.question, 5, caller)
            answers[item.id] = [
                Cited(c.clause_id, c.document_title, c.clause_number) for c in result.citations
            ]
            answer_refused[item.id] = result.status.value == "NO_EVIDENCE"
        rows["answers (extractive)"] = score_rows(items, answers, answer_refused)
    latencies.sort()
    rows["full (with refusal)"]["p50 ms"] = round(statistics.median(latencies), 1)
    rows["full (with refusal)"]["p95 ms"] = round(latencies[int(0.95 * (len(latencies) - 1))], 1)
    return rows, misses


def _miss(item: Item, clauses: dict, ranked, cited: list[Cited]) -> dict | None:
    """Where an answerable item's gold stands when the full pipeline's citations ``cited`` (none
    when refused) miss it at hit@5, as the table scores them (``devsets.hits``): its place in the
    first stage's pool and in the reranked order (0-based; None: not there; ``"not in index"``
    when the graph holds no such clause), the answerability and the ask as parsed, so a miss can
    be read without a script of one's own."""
    found = hits(item, cited, 5)
    missed = [level for level, key in (("document", "doc"), ("article", "article")) if found[key] == 0.0]
    if not missed:
        return None
    gold = gold_sets(item, clauses)
    pool = [f.clause_id for f in ranked.fused]
    reranked = [c.clause_id for c in ranked.candidates]
    out: dict = {}
    for level in missed:
        if not gold[level]:
            out[level] = "not in index"
            continue
        out[level] = {
            "first_stage": next((k for k, c in enumerate(pool) if c in gold[level]), None),
            "reranked": next((k for k, c in enumerate(reranked) if c in gold[level]), None),
        }
    return {
        "id": item.id,
        "misses": out,
        "refused": not ranked.evidence,
        "answerable": round(ranked.answerable, 3),
        "ask": ranked.parsed.ask[:60],
    }


def calibrate_on(retriever, items: list[Item], max_refused: float) -> dict:
    """Tune the dense prior on the answerable ``items`` and calibrate refusal on all of them
    (serving/retrieval/calibration.py), plot the refusal curve, apply both to the model."""
    from serving.retrieval.calibration import calibrate_model, plot_curve

    index = retriever.store.current()
    prior, cal = calibrate_model(
        retriever,
        [i.question for i in items],
        [i.answerable for i in items],
        [answer_sets(i, index.clauses) if i.answerable else [] for i in items],
        max_answerable_refused=max_refused,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    png = OUT / "refusal_curve.png"
    plot_curve(cal, png, "Refusal on real letters (leave-one-out) vs questions the standards do not answer")
    return {k: v for k, v in cal.__dict__.items() if k != "curve"} | {
        "png": str(png),
        "dense_prior": prior.__dict__ if prior else None,
    }


def _phase(server_home: Path, files: list[Path], home: Path, model_file: Path | None, train: bool):
    """Start a Neo4j, ingest ``files``, build the index; return (server, driver, retriever, service)."""
    from neo4j import GraphDatabase

    from kg.local_server import LocalNeo4j
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service, build_qa_service
    from serving.retrieval import HybridRetriever, IndexStore, load_model

    server = LocalNeo4j(server_home, free_port(), heap_mb=768, pagecache_mb=128)
    server.start(timeout=240)
    driver = GraphDatabase.driver(server.bolt_uri, auth=None, notifications_min_severity="OFF")
    settings = Settings(neo4j_uri=server.bolt_uri, home=home)
    t0 = time.perf_counter()
    report = build_ingest_service(settings, driver).ingest(files)
    ingest_s = round(time.perf_counter() - t0, 1)
    if report.failed:
        print(f"ingestion failures: {report.failed}", file=sys.stderr)
    config = dataclasses.replace(settings.retrieval, stale_check_s=0)
    store = IndexStore(home, driver, config)
    build = store.update()
    if train:
        from kgqa.commands.index import train_retrieval_model

        model_file = train_retrieval_model(settings, driver, store, quiet=True).path
    model = load_model(home, Path(model_file) if model_file else None)
    retriever = HybridRetriever(store, model, config)
    service = build_qa_service(settings, driver, retriever=retriever)
    info = {
        "ingest_s": ingest_s,
        "index_build_s": build.seconds,
        "units": build.units,
        "clauses": build.clauses,
    }
    return server, driver, retriever, service, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="retrieval model JSON (default: the packaged one)")
    ap.add_argument("--train", action="store_true", help="learn the model on the bench's graph first")
    ap.add_argument(
        "--calibrate", action="store_true", help="calibrate refusal on the letters, plot the curve"
    )
    ap.add_argument("--write-model", type=Path, help="save the (trained and/or calibrated) model here")
    ap.add_argument("--max-answerable-refused", type=float, default=0.05)
    ap.add_argument("--no-tidy", action="store_true", help="skip phase 2 (the 76 questions written here)")
    ap.add_argument("--no-answers", action="store_true", help="skip the service's answers (faster)")
    ap.add_argument(
        "--misses",
        action="store_true",
        help="list each answerable item the full pipeline misses at hit@5, with where its gold stands",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from kgqa.logging import configure_logging

    configure_logging("WARNING")
    corpus = shared_dir() / "corpus"
    if not (corpus / "cas-all").is_dir():
        print(f"shared corpus not found at {corpus} (set KGQA_SHARED_DIR); nothing to measure")
        sys.exit(0)
    work = Path(tempfile.mkdtemp(prefix="kgqa-bench-retrieval-"))
    result: dict = {}
    server, driver, retriever, service, info = _phase(
        work / "neo4j-cas",
        sorted((corpus / "cas-all").glob("*.md")),
        work / "home-cas",
        args.model,
        args.train,
    )
    try:
        index = retriever.store.current()
        items = load_letters(index.documents) + load_unanswerable()
        if args.calibrate:
            result["calibration"] = calibrate_on(retriever, items, args.max_answerable_refused)
        served = work / "model.json"  # what phase 2 serves with too: trained and calibrated here
        retriever.model.save(served)
        if args.write_model:
            retriever.model.save(args.write_model)
        rows, misses = _evaluate(retriever, index, items, None if args.no_answers else service)
        result["letters"] = {
            "graph": info,
            "answerable": sum(i.answerable for i in items),
            "with_articles": sum(bool(i.articles) for i in items),
            "unanswerable": sum(not i.answerable for i in items),
            "rows": rows,
            "misses": misses,
        }
        dev31 = [i for i in items if i.source in ("letters", "unanswerable")]
        result["letters"]["rows_dev31"] = _evaluate(retriever, index, dev31)[0]
        heldout = load_heldout()
        rows, misses = _evaluate(retriever, index, heldout, None if args.no_answers else service)
        result["heldout"] = {
            "answerable": sum(i.answerable for i in heldout),
            "unanswerable": sum(not i.answerable for i in heldout),
            "rows": rows,
            "misses": misses,
        }
    finally:
        service.close()  # its background threads use the driver: stop them before closing it
        driver.close()
        server.stop()
    if not args.no_tidy:
        files = sorted((corpus / "laws").glob("*.md")) + sorted((corpus / "standards").glob("*.md"))
        server, driver, retriever, service, info = _phase(
            work / "neo4j-tidy", files, work / "home-tidy", served, False
        )
        try:
            items = load_tidy()
            rows, misses = _evaluate(
                retriever, retriever.store.current(), items, None if args.no_answers else service
            )
            result["tidy"] = {"graph": info, "questions": len(items), "rows": rows, "misses": misses}
        finally:
            service.close()
            driver.close()
            server.stop()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_tables(result, misses=args.misses)


def print_tables(result: dict, *, misses: bool = False) -> None:
    cols = ["doc@1", "doc@5", "art@1", "art@5", "refused(ans)", "refused(unans)", "p50 ms", "p95 ms"]

    def cell(row: dict, col: str) -> str:
        value = row.get(col)
        if value is None:
            return ""
        interval = row.get("ci95", {}).get(col)
        return f"{value:.3f} [{interval[0]:.2f},{interval[1]:.2f}]" if interval else f"{value}"

    def listed(section: dict) -> None:
        if not misses:
            return
        for miss in section.get("misses", []):
            where = "; ".join(
                f"{level} {at}"
                if isinstance(at, str)
                else f"{level} first stage {at['first_stage']}, reranked {at['reranked']}"
                for level, at in miss["misses"].items()
            )
            refused = " refused" if miss["refused"] else ""
            print(f"    miss {miss['id']}: {where} (p {miss['answerable']}{refused}) {miss['ask']}")

    def table(title: str, rows: dict) -> None:
        print(title)
        print(f"  {'':22s}" + "".join(f"{c:>20s}" for c in cols))
        for name, row in rows.items():
            print(f"  {name:22s}" + "".join(f"{cell(row, c):>20s}" for c in cols))
        n = rows.get("full (with refusal)", next(iter(rows.values()), {})).get("n", {})
        print("  items per figure: " + ", ".join(f"{c} {n[c]}" for c in cols if c in n))
        for metric, gain in rows.get("full (with refusal)", {}).get("vs plain BM25", {}).items():
            if gain:
                verdict = "significant" if gain["significant"] else "within noise"
                print(
                    f"  full - plain BM25, {metric}: {gain['delta']:+.3f} "
                    f"[{gain['low']:+.3f},{gain['high']:+.3f}] over {gain['n']} ({verdict})"
                )

    letters = result["letters"]
    table(
        f"Real letters: {letters['answerable']} answerable ({letters['with_articles']} with gold articles), "
        f"{letters['unanswerable']} unanswerable; graph {letters['graph']}",
        letters["rows"],
    )
    listed(letters)
    table("The 31 letters of citation_dev.jsonl alone (+ the unanswerable set)", letters["rows_dev31"])
    if "heldout" in result:
        held = result["heldout"]
        table(
            f"eval/heldout_letters.jsonl: {held['answerable']} answerable, {held['unanswerable']} unanswerable "
            "(written after the model was frozen; never trained or calibrated on)",
            held["rows"],
        )
        listed(held)
    if "calibration" in result:
        print(f"calibration: {result['calibration']}")
    if "tidy" in result:
        tidy = result["tidy"]
        table(f"eval/questions.jsonl ({tidy['questions']} written here); graph {tidy['graph']}", tidy["rows"])
        listed(tidy)


if __name__ == "__main__":
    main()
