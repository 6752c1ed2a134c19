"""The ONNX encoder (bge-small-zh-v1.5 int8, the default), the encoder factory, and dense indexing.

Real model throughout: the int8 jar extracted from the local Maven repository into a temporary
``$KGQA_HOME/models`` (the ``embedding_models_dir`` fixture). The accounting checks rank real
articles of the shared corpus' accounting standards (``cas-all``).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from kgqa.errors import ConfigError
from serving.retrieval.dense import text_key
from serving.retrieval.encoders import OnnxEncoder, SentenceTransformerEncoder, load_encoder
from serving.retrieval.model_files import BGE_QUERY_INSTRUCTION, ModelManifest

CAS = {
    "CAS-1": "企业会计准则第1号——存货（2006）.md",
    "CAS-4": "企业会计准则第4号——固定资产（2006）  .md",
    "CAS-6": "企业会计准则第6号——无形资产（2006）.md",
    "CAS-9": "企业会计准则第9号——职工薪酬（2014年修订）.md",
    "CAS-13": "企业会计准则第13号——或有事项（2006）.md",
    "CAS-14": "企业会计准则第14号——收入（2017年修订）.md",
    "CAS-16": "企业会计准则第16号——政府补助（2017年修订）.md",
    "CAS-17": "企业会计准则第17号——借款费用（2006）.md",
}
_ARTICLE = re.compile(r"^\s*(第[一二三四五六七八九十百零]+条)\s*(.*)$")
_HEADING = re.compile(r"^\s*(#|第[一二三四五六七八九十]+章)")


def _articles(path: Path) -> dict[str, str]:
    """第N条 -> its text (the article line and the paragraphs up to the next article or chapter)."""
    articles: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := _ARTICLE.match(line):
            current = m.group(1)
            articles[current] = [m.group(2)]
        elif _HEADING.match(line):
            current = None
        elif current and line.strip():
            articles[current].append(line.strip())
    return {number: "\n".join(parts) for number, parts in articles.items()}


@pytest.fixture(scope="module")
def cas_articles(corpus_dir) -> list[tuple[str, str]]:
    """(``CAS-1/第十五条``, text) for every article of eight standards (about 250)."""
    return [
        (f"{doc}/{number}", text)
        for doc, name in CAS.items()
        for number, text in _articles(corpus_dir / "cas-all" / name).items()
    ]


@pytest.fixture(scope="module")
def cas_vectors(bge_encoder, cas_articles) -> np.ndarray:
    return bge_encoder.encode([text for _, text in cas_articles])


# -- the vectors ----------------------------------------------------------------------------------


def test_vectors_are_512_normalized_float32_rows_in_input_order(bge_encoder):
    texts = [
        "企业应当对所有固定资产计提折旧。但是，已提足折旧仍继续使用的固定资产和单独计价入账的土地除外。" * 3,
        "存货",
        "资产负债表日，存货应当按照成本与可变现净值孰低计量。",
    ]
    rows = bge_encoder.encode(texts)
    assert rows.shape == (3, 512) == (len(texts), bge_encoder.dim) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    alone = np.stack([bge_encoder.encode([t])[0] for t in texts])
    assert np.allclose(rows, alone, atol=1e-6), "batches of one: a text's vector ignores its company"
    # in batches, texts are sorted by length and padded to the longest; each row stays its text's
    # (int8 activations are quantized per batch, so batched and single rows differ by ~1%)
    batched = OnnxEncoder(bge_encoder.path, batch_size=3).encode(texts)
    assert np.all(np.einsum("ij,ij->i", batched, alone) > 0.98)
    assert bge_encoder.encode([]).shape == (0, 512)


def test_the_instruction_is_applied_to_queries_only(bge_encoder):
    question = "存货跌价准备怎么计提"
    query = bge_encoder.encode_queries([question])[0]
    assert np.allclose(query, bge_encoder.encode([BGE_QUERY_INSTRUCTION + question])[0], atol=1e-6)
    passage = bge_encoder.encode([question])[0]
    assert float(query @ passage) < 0.99, "a query vector must differ from the same text as a passage"


def test_input_is_truncated_at_512_tokens_and_lowercased(bge_encoder):
    long = "存货跌价准备" * 400  # 2400 characters, one token each
    first = long[:510]  # 510 tokens + [CLS] + [SEP] = 512
    assert np.allclose(bge_encoder.encode([long]), bge_encoder.encode([first]), atol=1e-6)
    # the vocabulary is uncased; without lowercasing "IFRS" would be [UNK]
    upper, lower, other = bge_encoder.encode(["IFRS 9 金融工具", "ifrs 9 金融工具", "XXXX 9 金融工具"])
    assert float(upper @ lower) > 0.9999 and float(upper @ other) < 0.99


def test_one_encoder_serves_concurrent_threads(bge_encoder):
    texts = [f"第{i}条 企业应当按照成本计量存货，计提跌价准备{i}次。" for i in range(12)]
    expected = np.stack([bge_encoder.encode([t])[0] for t in texts])
    before = bge_encoder.texts_encoded
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = bge_encoder.encode([texts[i]])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.allclose(np.stack([results[i] for i in range(len(texts))]), expected, atol=1e-6)
    assert bge_encoder.texts_encoded - before == len(texts)


# -- Chinese accounting sanity checks -------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        ("存货跌价准备怎么计提", "CAS-1/第十五条"),  # 成本与可变现净值孰低, 计提存货跌价准备
        ("存货的成本包括哪些", "CAS-1/第五条"),
        ("固定资产要不要计提折旧", "CAS-4/第十四条"),
        ("什么情况下要确认预计负债", "CAS-13/第四条"),
        ("借款费用什么时候开始资本化", "CAS-17/第五条"),
        ("辞退福利怎么确认", "CAS-9/第二十条"),
    ],
)
def test_the_right_article_ranks_above_every_other_standard(
    bge_encoder, cas_articles, cas_vectors, question, gold
):
    ids = [cid for cid, _ in cas_articles]
    scores = cas_vectors @ bge_encoder.encode_queries([question])[0]
    order = [ids[i] for i in np.argsort(-scores)]
    rank = order.index(gold)
    assert rank < 5, f"{gold} ranked {rank + 1}: {order[:5]}"
    doc = gold.split("/")[0]
    assert all(cid.startswith(doc + "/") for cid in order[:rank]), f"unrelated clauses first: {order[:rank]}"


def test_the_inventory_write_down_clause_beats_unrelated_clauses(bge_encoder, cas_articles, cas_vectors):
    by_id = dict(zip([cid for cid, _ in cas_articles], cas_vectors, strict=True))
    query = bge_encoder.encode_queries(["存货跌价准备怎么计提"])[0]
    write_down = float(by_id["CAS-1/第十五条"] @ query)
    for unrelated in ("CAS-4/第十四条", "CAS-14/第五条", "CAS-16/第三条", "CAS-9/第二十条"):
        assert write_down > float(by_id[unrelated] @ query) + 0.1, unrelated


# -- the factory and the model key ----------------------------------------------------------------


def test_default_is_bge_int8_and_a_missing_model_says_how_to_fetch_it(
    bge_encoder, embedding_models_dir, tmp_path
):
    assert isinstance(bge_encoder, OnnxEncoder)
    assert bge_encoder.path == embedding_models_dir / "bge-small-zh-v1.5-q"
    with pytest.raises(ConfigError, match="kgqa models fetch bge-small-zh"):
        load_encoder(None, models_dir=tmp_path / "models", maven_repo=tmp_path / "no-m2")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ConfigError, match="not an embedding model directory"):
        load_encoder(tmp_path / "junk", models_dir=tmp_path / "models")


def _recipe_changed(folder: Path, target: Path, **changes) -> Path:
    shutil.copytree(folder, target)
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    manifest["recipe"].update(changes)
    (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return target


def test_model_key_follows_the_model_not_the_folder(bge_encoder, tmp_path):
    same = load_encoder(shutil.copytree(bge_encoder.path, tmp_path / "copy"), models_dir=tmp_path)
    assert same.model_key == bge_encoder.model_key, "the same bytes and recipe are the same model"
    mean = load_encoder(
        _recipe_changed(bge_encoder.path, tmp_path / "mean", pooling="mean"), models_dir=tmp_path
    )
    assert mean.model_key != bge_encoder.model_key
    text = ["存货应当按照成本进行初始计量。"]
    assert float(mean.encode(text)[0] @ bge_encoder.encode(text)[0]) < 0.999
    assert ModelManifest.read(mean.path).files == ModelManifest.read(bge_encoder.path).files


@pytest.fixture(scope="module")
def tiny_sentence_transformer(bge_encoder, tmp_path_factory) -> Path:
    """A tiny random BERT as a sentence-transformers directory with a ``query`` prompt (seeded)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny-st")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(bge_encoder.path / "tokenizer.json"),
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    model = SentenceTransformer(
        modules=[Transformer(str(root / "hf"), max_seq_length=128), Pooling(32, "mean")],
        prompts={"query": "查询："},
    )
    model.save(str(root / "st"))
    return root / "st"


def test_a_sentence_transformers_directory_gets_its_own_encoder(tiny_sentence_transformer, tmp_path):
    encoder = load_encoder(tiny_sentence_transformer, models_dir=tmp_path)
    assert isinstance(encoder, SentenceTransformerEncoder) and encoder.dim == 32
    passages = encoder.encode(["存货", "固定资产"])
    assert passages.shape == (2, 32) and np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    query = encoder.encode_queries(["存货"])[0]
    assert np.allclose(query, encoder.encode(["查询：存货"])[0], atol=1e-5), "the model's query prompt"
    assert encoder.texts_encoded == 4


# -- the index, with dense on ---------------------------------------------------------------------

INDEXED = ("standards/企业会计准则第1号——存货（2006）.md", "standards/企业会计准则第4号——固定资产（2006）.md")


def _wipe(driver) -> None:
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


@pytest.fixture(scope="module")
def graph(neo4j_server, neo4j_driver, corpus_dir):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    _wipe(neo4j_driver)
    report = build_ingest_service(Settings(neo4j_uri=neo4j_server.bolt_uri), neo4j_driver).ingest(
        [corpus_dir / d for d in INDEXED]
    )
    assert report.ok, report.failed
    yield neo4j_driver
    _wipe(neo4j_driver)


@pytest.mark.neo4j
def test_index_build_embeds_every_unit_and_a_new_model_invalidates_the_cache(graph, bge_encoder, tmp_path):
    from serving.retrieval import HybridRetriever, IndexStore, RetrievalConfig

    config = RetrievalConfig(build_dense=True, stale_check_s=0)
    home = tmp_path / "home"
    store = IndexStore(home, graph, config, encoder=bge_encoder)
    report = store.rebuild()
    index = store.current()
    assert report.dense and len(index.dense) == report.units >= 40
    assert report.units - 3 <= report.embedded <= report.units  # identical texts are embedded once
    cache = store.dir / "embeddings" / f"{bge_encoder.model_key}.npz"
    with np.load(cache) as data:
        cached = dict(zip(data["keys"], data["vectors"], strict=True))
    assert len(cached) == report.embedded
    # passages are cached as passages: without the query instruction
    text = index.units[0].text[: config.embed_chars]
    assert np.allclose(cached[text_key(text)], bge_encoder.encode([text])[0], atol=1e-6)
    assert float(cached[text_key(text)] @ bge_encoder.encode_queries([text])[0]) < 0.98

    retriever = HybridRetriever(store, None, config)
    for question, gold in (
        ("存货跌价准备怎么计提", "CAS-1-存货/第十五条"),
        ("固定资产要不要计提折旧", "CAS-4-固定资产/第十四条"),
    ):
        dense = retriever.signals(question)[1].rankings["dense"]
        doc = gold.split("/")[0]
        assert gold in dense[:5] and all(c.startswith(doc + "/") for c in dense[:5]), dense[:5]

    # another model: the snapshot on disk is stale for it, every unit is embedded again
    other = load_encoder(
        _recipe_changed(bge_encoder.path, tmp_path / "mean", pooling="mean"), models_dir=tmp_path
    )
    switched = IndexStore(home, graph, config, encoder=other)
    assert switched.load().model_key == other.model_key
    assert other.texts_encoded == report.embedded, "no vector of the old model may be reused"
    meta = json.loads(
        (store.dir / "snapshots" / (store.dir / "CURRENT").read_text().strip() / "meta.json").read_text()
    )
    assert meta["model_key"] == other.model_key and meta["model_path"] == str(other.path)

    # and back: the first model's cache is kept under its own key, nothing is embedded
    before = bge_encoder.texts_encoded
    back = IndexStore(home, graph, config, encoder=bge_encoder)
    assert back.load().model_key == bge_encoder.model_key
    assert bge_encoder.texts_encoded == before
