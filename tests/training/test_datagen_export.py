"""Exports of a real scored and split dataset: contract fields, loaders, chat template, determinism.

Pairs are written from real corpus clauses (ingestion and rule triples, no Neo4j), augmented,
scored by the real verifier and split; the exported files are then read back the way their users
read them: ``datasets.load_dataset("json")`` (what LLaMA-Factory and TRL call), TRL's
``apply_chat_template`` with the tiny Qwen's tokenizer, and the verifier on each record's own
``contexts`` (what evaluation and the GRPO reward do without the graph).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ingest.pipeline import IngestPipeline
from kg.prompting import REFUSAL_ANSWER, ContextClause, build_system_prompt
from kg.triples import RuleTripleExtractor
from kg.verifier import EvidenceClause, TripleFact, Verifier
from training.datagen.augment import AugmentConfig, augment, punctuation_positions
from training.datagen.context import context_order, excerpt
from training.datagen.export import (
    ALPACA_COLUMNS,
    SHAREGPT_COLUMNS,
    ExportConfig,
    chat_members,
    dataset_hash,
    export_dataset,
    grpo_members,
)
from training.datagen.quality import QualityConfig, QualityScorer
from training.datagen.splits import SplitConfig, assign_splits, leak_check
from training.datagen.types import GraphSnapshot, QAPair, SourceClause, SourceTriple

FILES = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")
GRAPH_VERSION = 9
CHAT_KEYS = {
    "messages", "id", "question", "reference", "qtype", "difficulty", "style", "answerable", "cot",
    "gold_clause_ids", "clause_versions", "graph_version", "template_id", "generator", "augmentation",
    "split", "contexts",
}  # fmt: skip
CONTEXT_KEYS = {"clause_id", "version", "doc_id", "doc_title", "number", "text", "section_path", "triples"}


def build_snapshot(corpus_dir) -> GraphSnapshot:
    clauses: dict[str, SourceClause] = {}
    extractor = RuleTripleExtractor()
    for name in FILES:
        tree = IngestPipeline().process(corpus_dir / name)
        triples: dict[str, list[SourceTriple]] = {}
        for t in extractor.extract(tree).triples:
            triples.setdefault(t.clause_id, []).append(
                SourceTriple(t.subject, t.predicate, t.object, dict(t.qualifiers))
            )
        for c in tree.clauses:
            clauses[c.clause_id] = SourceClause(
                clause_id=c.clause_id,
                version=2 if c.number == "第五条" else 1,
                doc_id=tree.doc_id,
                doc_title=tree.title,
                number=c.number,
                text=c.text,
                section_path=("第一章 总则",) if c.number in ("第一条", "第二条") else (),
                triples=tuple(triples.get(c.clause_id, ())),
            )
    return GraphSnapshot(graph_version=GRAPH_VERSION, clauses=clauses, tables=(), outlines={})


def make_pairs(snapshot: GraphSnapshot) -> list[QAPair]:
    """One pair per clause, answered with the clause's first sentence; a few unanswerable ones."""
    pairs: list[QAPair] = []
    ids = sorted(snapshot.clauses)
    for i, cid in enumerate(ids):
        clause = snapshot.clauses[cid]
        body = re.sub(r"^第[一二三四五六七八九十百零]+条\s*", "", clause.text)
        first = re.split(r"(?<=[。；：])", body)[0].rstrip("。；：").strip()
        if len(first) < 6:
            continue
        distractor = ids[(i + 7) % len(ids)]
        pairs.append(
            QAPair(
                pair_id=f"p{i:03d}",
                question=f"《{clause.doc_title}》{clause.number}是怎么规定的？",
                answer=f"{first}[[{cid}]]。",
                qtype="fact",
                difficulty="基础",
                style="formal",
                gold={cid: clause.version},
                context_ids=[cid, distractor],
                template_id="fact.first_sentence",
            )
        )
    for j, q in enumerate(["公司食堂的菜单由谁决定？", "员工团建活动一年几次？", "办公室绿植多久浇一次水？"]):
        pairs.append(
            QAPair(
                f"u{j}",
                q,
                REFUSAL_ANSWER,
                "unanswerable",
                "基础",
                "everyday",
                {},
                [ids[j], ids[j + 3]],
                "unanswerable.t",
            )
        )
    return pairs


@pytest.fixture(scope="module")
def built(corpus_dir, tmp_path_factory):
    snapshot = build_snapshot(corpus_dir)
    pairs = augment(make_pairs(snapshot), AugmentConfig(punct_ratio=0.3, punct_on_context=True, seed=0))
    # answers longer than 60 characters are verified but "weak": they land in the GRPO band
    QualityScorer(Verifier(), QualityConfig(max_answer_chars=60)).score(pairs, snapshot)
    assign_splits(pairs, SplitConfig(seed=0))
    assert leak_check(pairs) == []
    out = tmp_path_factory.mktemp("dataset")
    files = export_dataset(pairs, snapshot, out, graph_version=GRAPH_VERSION)
    return snapshot, pairs, out, files


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_bands_and_splits_are_all_represented(built):
    _, pairs, _, _ = built
    assert {p.band for p in pairs} >= {"sft", "grpo"}
    assert {p.split for p in pairs if p.band == "sft"} >= {"train", "val", "test_unseen", "test_paraphrase"}


def test_chat_files_hold_the_contract_records(built):
    snapshot, pairs, out, files = built
    by_id = {p.pair_id: p for p in pairs}
    verifier = Verifier()
    to_grpo = {p.pair_id for p in grpo_members(pairs)}
    for split in ("train", "val", "test_unseen", "test_paraphrase", "test_refusal"):
        records = read_jsonl(files[f"chat/{split}"])
        assert [r["id"] for r in records] == [p.pair_id for p in chat_members(pairs, split, to_grpo)]
        assert records or split == "test_refusal", split
        # refusals are their own test set; the answerable tests hold no unanswerable pair
        assert all(not r["answerable"] for r in records) if split == "test_refusal" else True
        assert (
            all(r["answerable"] for r in records)
            if split.startswith("test_") and split != "test_refusal"
            else True
        )
        for r in records:
            pair = by_id[r["id"]]
            assert set(r) == CHAT_KEYS
            assert r["split"] == split or split == "test_refusal"
            assert r["graph_version"] == GRAPH_VERSION
            assert pair.band == "sft" if split in ("train", "val") else pair.band in ("sft", "grpo")
            assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
            assert r["messages"][1]["content"] == pair.question and r["messages"][2]["content"] == pair.answer
            assert r["reference"] == pair.answer and r["answerable"] == pair.answerable
            assert r["gold_clause_ids"] == list(pair.gold) and r["clause_versions"] == pair.gold
            assert (r["template_id"], r["generator"], r["augmentation"]) == (
                pair.template_id, pair.generator, pair.augmentation,
            )  # fmt: skip
            # contexts: the prompt's clauses in prompt order, with version and triples
            assert [c["clause_id"] for c in r["contexts"]] == context_order(pair)
            for c in r["contexts"]:
                assert set(c) == CONTEXT_KEYS
                assert c["version"] == snapshot.clauses[c["clause_id"]].version
                assert len(c["triples"]) == len(snapshot.clauses[c["clause_id"]].triples)
            shown = [
                ContextClause(c["clause_id"], c["doc_title"], c["number"], c["text"], c["section_path"])
                for c in r["contexts"]
            ]
            assert r["messages"][0]["content"] == build_system_prompt(shown)
            # the reference verifies against the record's own contexts (no graph needed)
            evidence = {
                c["clause_id"]: EvidenceClause(
                    c["clause_id"], c["version"], "active", c["doc_id"], c["doc_title"], 1, c["number"],
                    c["text"], c["section_path"],
                    triples=[TripleFact(t["subject"], t["predicate"], t["object"], t["qualifiers"]) for t in c["triples"]],
                )
                for c in r["contexts"]
            }  # fmt: skip
            result = verifier.verify_against(r["reference"], evidence, allowed_ids=list(evidence))
            assert result.verified if r["answerable"] else result.refusal


def test_context_punctuation_is_stripped_only_for_flagged_variants(built):
    _, pairs, _, files = built
    by_id = {p.pair_id: p for p in pairs}
    seen_flagged = 0
    for split in ("train", "val", "test_unseen", "test_paraphrase"):
        for r in read_jsonl(files[f"chat/{split}"]):
            flagged = by_id[r["id"]].extra.get("strip_context_punct", False)
            if not flagged:
                assert any(punctuation_positions(c["text"]) for c in r["contexts"])
            else:
                assert not any(punctuation_positions(c["text"]) for c in r["contexts"])
                seen_flagged += 1
                # the answer keeps its punctuation and markers
                assert r["reference"].endswith("。") and ("[[" in r["reference"]) == r["answerable"]
    assert seen_flagged > 0


def test_grpo_prompts_have_no_assistant_turn(built):
    _, pairs, _, files = built
    records = read_jsonl(files["grpo/prompts"])
    assert [r["id"] for r in records] == [p.pair_id for p in grpo_members(pairs)]
    assert any(not r["answerable"] for r in records) and any(r["answerable"] for r in records)
    # balanced: unanswerable prompts are at most 20% (the default share), and none is also taught by SFT
    assert sum(not r["answerable"] for r in records) <= 0.2 * len(records)
    taught = {r["id"] for r in read_jsonl(files["chat/train"])}
    assert not taught & {r["id"] for r in records}
    for r in records:
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert "messages" not in r and r["split"] == "train"
        assert r["reference"] and "gold_clause_ids" in r and r["contexts"]


def test_grpo_eval_prompts_come_from_the_validation_split(built):
    _, pairs, _, files = built
    records = read_jsonl(files["grpo/eval"])
    assert records and {r["split"] for r in records} == {"val"}
    assert [r["id"] for r in records] == [p.pair_id for p in grpo_members(pairs, "val")]
    assert any(by.band == "grpo" for by in pairs if by.pair_id in {r["id"] for r in records})


def test_trimmed_prompts_keep_what_the_answer_quotes(built, tmp_path):
    snapshot, pairs, _, _ = built
    files = export_dataset(
        pairs, snapshot, tmp_path, graph_version=GRAPH_VERSION, config=ExportConfig(max_context_chars=80)
    )
    verifier = Verifier()
    trimmed = 0
    for split in ("train", "test_unseen"):
        for r in read_jsonl(files[f"chat/{split}"]):
            full = {c: snapshot.clauses[c].text for c in (x["clause_id"] for x in r["contexts"])}
            trimmed += sum(len(c["text"]) < len(full[c["clause_id"]]) for c in r["contexts"])
            evidence = {
                c["clause_id"]: EvidenceClause(
                    c["clause_id"], c["version"], "active", c["doc_id"], c["doc_title"], 1, c["number"],
                    c["text"], c["section_path"],
                    triples=[TripleFact(t["subject"], t["predicate"], t["object"], t["qualifiers"]) for t in c["triples"]],
                )
                for c in r["contexts"]
            }  # fmt: skip
            result = verifier.verify_against(r["reference"], evidence, allowed_ids=list(evidence))
            assert result.verified if r["answerable"] else result.refusal, (r["reference"], r["contexts"])
    assert trimmed > 20


def test_excerpt_keeps_quoted_sentences_and_marks_gaps():
    text = "第一条 甲。乙应当在五日内完成。丙。丁。戊应当报财务部备案。己。"
    cut = excerpt(text, "乙应当在五日内完成[[X/第一条]]。", 12)
    assert "乙应当在五日内完成。" in cut and cut.startswith("……") and cut.endswith("……")
    assert excerpt(text, "无关", 6).startswith("第一条")
    assert excerpt(text, "乙", 1000) == text


def test_exports_load_with_datasets_and_dataset_info_is_right(built):
    from datasets import load_dataset

    _, _, out, files = built
    for key in ("chat/train", "chat/test_unseen", "grpo/prompts"):
        ds = load_dataset("json", data_files=str(files[key]), split="train")
        assert len(ds) == len(read_jsonl(files[key]))
        assert ds[0]["graph_version"] == GRAPH_VERSION
    lf = out / "llamafactory"
    info = json.loads((lf / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"kgqa_alpaca_train", "kgqa_alpaca_val", "kgqa_sharegpt_train", "kgqa_sharegpt_val"}
    train_rows = read_jsonl(files["chat/train"])
    for name, entry in info.items():
        path = lf / entry["file_name"]
        assert path.is_file()
        ds = load_dataset("json", data_files=str(path), split="train")
        assert len(ds) == len(read_jsonl(files["chat/" + name.rsplit("_", 1)[1]]))
        if entry["formatting"] == "alpaca":
            assert entry["columns"] == ALPACA_COLUMNS
            assert set(entry["columns"].values()) <= set(ds.column_names)
        else:
            assert entry["formatting"] == "sharegpt" and entry["columns"] == SHAREGPT_COLUMNS
            assert set(entry["columns"].values()) <= set(ds.column_names)
            tags = entry["tags"]
            for row in ds:
                turns = row[entry["columns"]["messages"]]
                assert [t[tags["role_tag"]] for t in turns] == [tags["user_tag"], tags["assistant_tag"]]
                assert all(t[tags["content_tag"]] for t in turns)
        # provenance on every record
        assert {
            "id",
            "gold_clause_ids",
            "clause_versions",
            "graph_version",
            "template_id",
            "generator",
        } <= set(ds.column_names)
    alpaca = json.loads((lf / "alpaca_train.json").read_text(encoding="utf-8"))
    assert [a["output"] for a in alpaca] == [r["reference"] for r in train_rows]
    assert [a["system"] for a in alpaca] == [r["messages"][0]["content"] for r in train_rows]


def test_trl_tokenizes_the_chat_and_grpo_files(built, tiny_model_dir):
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template, is_conversational

    _, _, _, files = built
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for r in read_jsonl(files["chat/train"])[:20]:
        assert is_conversational(r)
        text = apply_chat_template(r, tokenizer)["text"]
        assert r["messages"][1]["content"] in text and r["reference"] in text
        ids = tokenizer.apply_chat_template(r["messages"], tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        assert len(ids) > 50
    for r in read_jsonl(files["grpo/prompts"])[:10]:
        prompt = apply_chat_template(r, tokenizer)["prompt"]
        assert r["question"] in prompt


def test_output_is_deterministic_and_hashed(built, tmp_path):
    snapshot, pairs, out, _ = built
    again = tmp_path / "again"
    export_dataset(pairs, snapshot, again, graph_version=GRAPH_VERSION)
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        assert path.read_bytes() == (again / path.relative_to(out)).read_bytes(), path
    assert dataset_hash(out) == dataset_hash(again)
    (again / "manifest.json").write_text("{}", encoding="utf-8")  # the manifest is not hashed
    assert dataset_hash(out) == dataset_hash(again)
    changed = tmp_path / "changed"
    shutil.copytree(again, changed)
    (changed / "chat" / "val.jsonl").write_text("", encoding="utf-8")
    assert dataset_hash(changed) != dataset_hash(out)
    assert "\\u" not in (out / "chat" / "train.jsonl").read_text(encoding="utf-8")  # ensure_ascii=False
