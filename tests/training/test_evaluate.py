"""`kgqa eval` end to end on the tiny Qwen, with and without a LoRA adapter, on real corpus clauses."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import typer
from test_metrics import FAPIAO, VAT, read_context
from typer.testing import CliRunner

from kg.prompting import REFUSAL_ANSWER, ContextClause, build_system_prompt
from kgqa.errors import ConfigError
from kgqa.wiring import build_encoder_loader, build_generator
from training.eval_config import EvalConfig, GenerationConfig
from training.evaluate import EvalRunner, aggregate, load_test_sets, prompt_messages
from training.generation import Completion, resolve_adapter
from training.metrics import token_f1

STOCK = "standards/企业会计准则第1号——存货（2006）.md"

# (doc file, doc id, gold clause, question, reference, qtype)
ANSWERABLE = [
    (
        VAT,
        "VAT-REG",
        "第十二条",
        "小规模纳税人的增值税征收率是多少？",
        "小规模纳税人增值税征收率为3%[[VAT-REG/第十二条]]。",
        "fact",
    ),
    (
        VAT,
        "VAT-REG",
        "第二十四条",
        "进口货物的增值税应在多长时间内缴纳？",
        "纳税人进口货物，应当自海关填发海关进口增值税专用缴款书之日起15日内缴纳税款[[VAT-REG/第二十四条]]。",
        "fact",
    ),
    (
        FAPIAO,
        "FPGL",
        "第三十五条",
        "虚开发票金额在1万元以下的，可以并处多少罚款？",
        "虚开金额在1万元以下的，可以并处5万元以下的罚款[[FPGL/第三十五条]]。",
        "fact",
    ),
    (
        STOCK,
        "CAS-1-存货",
        "第五条",
        "存货应当如何进行初始计量？",
        "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。",
        "definition",
    ),
]
# (doc file, doc id, shown clause, question) — the shown clause does not answer
UNANSWERABLE = [
    (STOCK, "CAS-1-存货", "第五条", "员工出差的住宿费标准是多少？"),
    (VAT, "VAT-REG", "第十二条", "发票丢失后应当如何处理？"),
]


def _record(corpus_dir: Path, rid: str, contexts: list[dict], question: str, reference: str, **extra) -> dict:
    shown = [ContextClause(c["clause_id"], c["doc_title"], c["number"], c["text"]) for c in contexts]
    return {
        "messages": [
            {"role": "system", "content": build_system_prompt(shown)},
            {"role": "user", "content": question},
            {"role": "assistant", "content": reference},
        ],
        "id": rid,
        "question": question,
        "reference": reference,
        "contexts": contexts,
        **extra,
    }


@pytest.fixture(scope="module")
def records(corpus_dir) -> list[dict]:
    out = []
    for i, (doc, doc_id, number, q, ref, qtype) in enumerate(ANSWERABLE):
        ctx = read_context(corpus_dir / doc, doc_id, number)
        out.append(
            _record(
                corpus_dir,
                f"a{i}",
                [ctx],
                q,
                ref,
                qtype=qtype,
                answerable=True,
                gold_clause_ids=[ctx["clause_id"]],
            )
        )
    for i, (doc, doc_id, number, q) in enumerate(UNANSWERABLE):
        ctx = read_context(corpus_dir / doc, doc_id, number)
        out.append(
            _record(
                corpus_dir,
                f"u{i}",
                [ctx],
                q,
                REFUSAL_ANSWER,
                qtype="unanswerable",
                answerable=False,
                gold_clause_ids=[],
            )
        )
    return out


def _config(**generation) -> EvalConfig:
    config = EvalConfig.load()
    config.generation = GenerationConfig(
        backend="transformers", device="cpu", max_new_tokens=12, **generation
    )
    return config


@pytest.fixture(scope="module")
def eval_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A run folder holding a random LoRA adapter (r=4, q/v) in ``adapter/``, as SFT writes one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    run = tmp_path_factory.mktemp("runs") / "sft-test"
    peft_model.save_pretrained(run / "adapter")
    (run / "provenance.json").write_text(
        json.dumps({"graph_version": 7, "dataset_hash": "abc"}), encoding="utf-8"
    )
    return run


@pytest.fixture(scope="module")
def base_report(tiny_model_dir, records, embedding_models_dir, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval-base")
    generator = build_generator(tiny_model_dir, None, _config().generation)
    config = _config()
    config.confidence = 0.9  # not the default: metrics.md must say the level the intervals have
    runner = EvalRunner(
        config, generator, load_encoder=build_encoder_loader(embedding_models_dir), progress=False
    )
    report = runner.run({"paraphrase": records}, out)
    return report, out


def _predictions(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]


def test_report_files_are_consistent_with_the_predictions(base_report, tiny_model_dir):
    report, out = base_report
    on_disk = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert on_disk["test_sets"].keys() == {"paraphrase"}
    assert on_disk["model"]["base"] == str(tiny_model_dir.resolve()) and on_disk["model"]["adapter"] is None
    assert on_disk["ahp"]["cr"] < 0.1 and len(on_disk["ahp"]["weights"]) == 9
    agg = on_disk["test_sets"]["paraphrase"]["aggregates"]
    assert (agg["n"], agg["n_answerable"], agg["n_unanswerable"]) == (6, 4, 2)
    assert on_disk["semantic_model"].endswith("bge-small-zh-v1.5-q") and -1 <= agg["semantic_similarity"] <= 1

    rows = _predictions(out)
    assert [r["id"] for r in rows] == ["a0", "a1", "a2", "a3", "u0", "u1"]
    for r in rows:
        assert r["model_id"] == on_disk["model"]["model_id"] == "tiny-qwen"
        assert r["metrics"]["token_f1"] == pytest.approx(token_f1(r["prediction"], r["reference"]))
        assert r["latency_s"] > 0 and 0 < r["completion_tokens"] <= 12
        assert isinstance(r["verified"], bool)
        # the reference's perplexity counts its own tokens plus <|im_end|>
        assert r["metrics"]["reference_tokens"] > 1 and r["metrics"]["perplexity"] > 1
    answerable = [r for r in rows if r["answerable"]]
    assert agg["token_f1"] == pytest.approx(sum(r["metrics"]["token_f1"] for r in rows) / 6)
    assert agg["citation_recall"] == pytest.approx(
        sum(r["metrics"]["citation_recall"] for r in answerable) / 4
    )
    assert agg["hallucination_rate"] == pytest.approx(sum(bool(r["unsupported"]) for r in answerable) / 4)
    # key facts: a0 (3%), a1 (15日), a2 (1万元, 5万元) have facts; a3 and the refusals have none
    assert agg["key_facts_scored"] == 3 and agg["key_facts_excluded"] == 3
    assert rows[2]["metrics"]["key_facts"] == ["10000元", "50000元"]
    assert agg["latency_p50_s"] <= agg["latency_p95_s"] and agg["tokens_per_second"] > 0
    assert set(on_disk["test_sets"]["paraphrase"]["per_qtype"]) == {"definition", "fact", "unanswerable"}
    assert on_disk["test_sets"]["paraphrase"]["per_qtype"]["fact"]["n"] == 3
    comp = on_disk["test_sets"]["paraphrase"]["composite"]
    assert 0.0 <= comp["score"] <= 1.0
    md = (out / "metrics.md").read_text(encoding="utf-8")
    assert (
        "| token F1 (jieba) |" in md and "composite (AHP)" in md and "## paraphrase: per question type" in md
    )
    assert "Brackets: 90% bootstrap interval" in md


def test_perfect_answers_score_perfectly(tiny_model_dir, records):
    """The metric math of the runner, with the real generator object but answers set to the references."""
    generator = build_generator(tiny_model_dir, None, _config().generation)
    runner = EvalRunner(_config(), generator, progress=False)
    rows = [
        runner._score_record("t", rec, Completion(rec["reference"], 10, 100, 0.5), None, 1.0, 0.5)
        for rec in records
    ]
    agg = aggregate(rows)
    assert agg["token_f1"] == 1.0 and agg["rouge_l"] == pytest.approx(1.0, abs=1e-6)
    assert agg["key_fact_accuracy"] == 1.0 and agg["bleu"] == pytest.approx(100.0)
    assert (agg["citation_precision"], agg["citation_recall"]) == (1.0, 1.0)
    assert (agg["hallucination_rate"], agg["verified_rate"]) == (0.0, 1.0)
    assert (agg["correct_refusal_rate"], agg["false_refusal_rate"]) == (1.0, 0.0)
    assert agg["empty_answer_rate"] == 0.0
    assert agg["tokens_per_second"] == pytest.approx(60 / 3.0)  # 6 x 10 tokens in 6 x 0.5 s


def test_wrong_amount_counts_as_hallucination(tiny_model_dir, records):
    generator = build_generator(tiny_model_dir, None, _config().generation)
    runner = EvalRunner(_config(), generator, progress=False)
    wrong = records[2]["reference"].replace("5万元", "8万元")
    row = runner._score_record("t", records[2], Completion(wrong, 10, 100, 0.5), None, None, 0.5)
    assert row["unsupported"][0]["normalized"] == "80000元" and not row["verified"]
    assert row["metrics"]["key_fact_recall"] == 0.5 and row["metrics"]["key_facts_missing"] == ["50000元"]
    refused = runner._score_record("t", records[0], Completion(REFUSAL_ANSWER, 5, 100, 0.5), None, None, 0.5)
    empty = runner._score_record("t", records[1], Completion("\n\n", 2, 100, 0.5), None, None, 0.5)
    assert empty["unsupported"] == [] and not empty["refusal"]
    agg = aggregate([row, refused, empty])
    assert agg["hallucination_rate"] == pytest.approx(1 / 3)
    assert agg["false_refusal_rate"] == pytest.approx(1 / 3)
    assert agg["empty_answer_rate"] == pytest.approx(1 / 3)


def test_adapter_changes_answers_and_is_reported(
    tiny_model_dir, eval_adapter_dir, records, base_report, tmp_path
):
    assert resolve_adapter(eval_adapter_dir) == eval_adapter_dir / "adapter"
    config = _config(batch_size=3)  # also the left-padded batch path
    generator = build_generator(tiny_model_dir, eval_adapter_dir, config.generation)
    report = EvalRunner(config, generator, progress=False).run(records, tmp_path)
    model = report["model"]
    assert model["model_id"] == "tiny-qwen+sft-test" and model["adapter"].endswith("adapter")
    assert model["provenance"] == {"graph_version": 7, "dataset_hash": "abc"}
    rows, base_rows = _predictions(tmp_path), _predictions(base_report[1])
    assert [r["id"] for r in rows] == [r["id"] for r in base_rows]
    assert [r["prediction"] for r in rows] != [r["prediction"] for r in base_rows]
    ppl = report["test_sets"]["test"]["aggregates"]["perplexity"]
    assert ppl != pytest.approx(base_report[0]["test_sets"]["paraphrase"]["aggregates"]["perplexity"])
    # a batch's answers share its wall time
    assert len({r["latency_s"] for r in rows[:3]}) == 1


def test_batched_and_single_generation_agree(tiny_model_dir, records):
    single = build_generator(tiny_model_dir, None, _config().generation)
    batched = build_generator(tiny_model_dir, None, _config(batch_size=3).generation)
    convs = [prompt_messages(r) for r in records[:3]]
    one = [single.generate([c])[0] for c in convs]
    many = batched.generate(convs)
    assert [c.text for c in many] == [c.text for c in one]
    assert [c.completion_tokens for c in many] == [c.completion_tokens for c in one]


def test_dataset_folder_gives_both_test_sets(records, tmp_path):
    chat = tmp_path / "ds" / "chat"
    chat.mkdir(parents=True)
    (chat / "test_paraphrase.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records[:2])
    )
    (chat / "test_unseen.jsonl").write_text(json.dumps(records[4], ensure_ascii=False) + "\n")
    sets = load_test_sets([tmp_path / "ds"])
    assert {k: len(v) for k, v in sets.items()} == {"paraphrase": 2, "unseen": 1}
    assert load_test_sets([chat / "test_unseen.jsonl"]).keys() == {"unseen"}
    with pytest.raises(ConfigError, match="no test set here"):
        load_test_sets([tmp_path])
    (tmp_path / "bad.jsonl").write_text('{"messages": []}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:1"):
        load_test_sets([tmp_path / "bad.jsonl"])


def test_cli_command_writes_the_report(tiny_model_dir, eval_adapter_dir, records, tmp_path):
    from kgqa.commands.evaluate import eval_command

    data = tmp_path / "test_paraphrase.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    app = typer.Typer()
    app.command()(eval_command)
    result = CliRunner().invoke(
        app,
        [
            "--base",
            str(tiny_model_dir),
            "--adapter",
            str(eval_adapter_dir),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "report"),
            "--limit",
            "2",
            "--backend",
            "transformers",
            "--max-new-tokens",
            "8",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["test_sets"]["paraphrase"]["aggregates"]["n"] == 2
    assert payload["model"]["model_id"].endswith("+sft-test")
    assert len(_predictions(tmp_path / "report")) == 2


def test_semantic_similarity_with_the_default_model(embedding_models_dir, tmp_path):
    from training.metrics.semantic import SemanticScorer

    scorer = SemanticScorer(
        tmp_path / "no-such-model", load_encoder=build_encoder_loader(embedding_models_dir)
    )  # falls back
    assert scorer.model_path.endswith("bge-small-zh-v1.5-q")
    ref = "小规模纳税人增值税征收率为3%[[VAT-REG/第十二条]]。"
    same, para, other = scorer.similarities(
        [
            "小规模纳税人增值税征收率为3%。",
            "小规模纳税人适用的增值税征收率是百分之三。",
            "存货应当按照成本进行初始计量。",
        ],
        [ref] * 3,
    )
    assert same == pytest.approx(1.0, abs=1e-5)
    assert para > 0.8 and other < 0.6


def _cuda_vllm() -> bool:
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_vllm(), reason="needs CUDA and vLLM")
def test_vllm_generation_matches_transformers_perplexity(tiny_model_dir, eval_adapter_dir, records, tmp_path):
    config = EvalConfig.load()
    config.generation = GenerationConfig(
        backend="vllm",
        max_new_tokens=12,
        batch_size=6,
        gpu_memory_utilization=0.3,
        max_model_len=2048,
        max_lora_rank=8,
    )
    generator = build_generator(tiny_model_dir, eval_adapter_dir, config.generation)
    report = EvalRunner(config, generator, progress=False).run(records, tmp_path)
    assert report["model"]["backend"] == "vllm" and report["model"]["model_id"] == "tiny-qwen+sft-test"
    rows = _predictions(tmp_path)
    assert len(rows) == 6 and all(0 < r["completion_tokens"] <= 12 for r in rows)
    # the same adapter scored by transformers gives the same reference perplexity (bf16 vs fp32 aside)
    cpu = build_generator(
        tiny_model_dir, eval_adapter_dir, GenerationConfig(backend="transformers", device="cpu")
    )
    ref = cpu.score_references([(prompt_messages(records[0]), records[0]["reference"])])[0]
    assert rows[0]["metrics"]["perplexity"] == pytest.approx(ref.perplexity, rel=0.1)
