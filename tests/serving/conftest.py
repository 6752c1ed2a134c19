"""Fixtures of the transport tests: real ingested data, the real QAService, real servers on port 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from serving_data import AUDITOR_KEY, DOCS, READER_KEY

REPO = Path(__file__).resolve().parents[2]

# The stubs are a build product (gitignored); building is idempotent and fast when up to date.
subprocess.run([sys.executable, str(REPO / "protos" / "build.py")], check=True, capture_output=True)


@pytest.fixture(scope="module")
def serving_home(tmp_path_factory) -> Path:
    """A KGQA_HOME of this module's own, so the retrieval index never mixes test graphs."""
    return tmp_path_factory.mktemp("kgqa-home")


@pytest.fixture(scope="module")
def ingested(neo4j_server, neo4j_driver, corpus_dir, serving_home):
    """Two corpus files in the graph (re-ingesting unchanged files leaves the graph as it is)."""
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, home=serving_home)
    report = build_ingest_service(settings, neo4j_driver).ingest([corpus_dir / d for d in DOCS])
    assert report.ok, report.failed
    return report


@pytest.fixture(scope="module")
def qa_service(neo4j_server, neo4j_driver, ingested, serving_home):
    from kgqa.settings import Settings
    from kgqa.wiring import build_qa_service

    service = build_qa_service(Settings(neo4j_uri=neo4j_server.bolt_uri, home=serving_home), neo4j_driver)
    yield service
    service.close()  # its audit writer drains, its evidence snapshot stops following the graph


@pytest.fixture(scope="module")
def keyring():
    from serving.auth import KeyRing
    from serving.types import Role

    return KeyRing([(READER_KEY, Role.READER), (AUDITOR_KEY, Role.AUDITOR)], source="tests")


@pytest.fixture(scope="module")
def servers(qa_service, keyring):
    """gRPC and REST over one service on free ports, stopped after the module."""
    from serving.server import start_servers

    running = start_servers(
        qa_service, keyring, host="127.0.0.1", grpc_port=0, http_port=0, grace=1.0, health_interval_s=0.5
    )
    yield running
    running.stop(grace=1.0)


# --- answer backends: real corpus clauses and a tiny real Qwen (owned by the backends' tests) ---

TINY_CORPUS = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")


@pytest.fixture(scope="session")
def corpus_clauses(corpus_dir):
    """A few real clauses as retrieval would return them, keyed by clause id."""
    from corpus_clauses import read_clause

    stock = corpus_dir / TINY_CORPUS[0]
    vat = corpus_dir / TINY_CORPUS[1]
    clauses = [
        read_clause(stock, "CAS-1-存货", "第五条", ["第三章 计量"]),
        read_clause(stock, "CAS-1-存货", "第六条", ["第三章 计量"]),
        read_clause(stock, "CAS-1-存货", "第四条", ["第二章 确认"]),
        read_clause(vat, "VAT-REG", "第一条", []),
        read_clause(vat, "VAT-REG", "第二条", []),
    ]
    return {c.clause_id: c for c in clauses}


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter (r=4, q/v) on the tiny model, perturbed so that it changes what the model says.

    PEFT initialises B to zero (the adapter starts as a no-op); random A and B make it matter.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    out = tmp_path_factory.mktemp("tiny-adapter")
    peft_model.save_pretrained(out)
    return out


@pytest.fixture
def broken_phrase_index(monkeypatch):
    """Every full-text posting points past the last unit for one test (what postings kept across
    an index rebuild would do): every Ask then fails inside numpy with an IndexError, a real
    bug-like 500 (not a KgqaError)."""
    import numpy as np

    from serving.retrieval.phrases import PhraseIndex

    monkeypatch.setattr(PhraseIndex, "postings", lambda self, term: (np.array([10**6]), np.array([1])))


@pytest.fixture
def logs(capsys):
    """The process's log output (stderr), with logging configured as ``kgqa serve`` does."""
    from kgqa.logging import configure_logging

    def configure(json_logs: bool = False):
        configure_logging("INFO", json_logs)
        capsys.readouterr()
        return capsys

    yield configure
    configure_logging("INFO")
