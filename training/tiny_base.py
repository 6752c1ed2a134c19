"""A tiny Qwen2-architecture model with a tokenizer trained on our corpus, for tests and offline demos.

No model hub is reachable where kgqa is developed and tested, so the code paths that load a real
Qwen directory (serving backends, SFT, GRPO) are exercised with a directory built here: a real
``Qwen2ForCausalLM`` with tiny sizes (as TRL's ``scripts/generate_tiny_models`` does) and a
byte-level BPE tokenizer trained on the given texts with Qwen's pre-tokenizer and ChatML template.
It is saved with ``save_pretrained``, so ``AutoModelForCausalLM.from_pretrained(dir)`` and
``AutoTokenizer.from_pretrained(dir)`` load it exactly like a real Qwen directory; nothing
downstream special-cases it.

The weights are random (``torch.manual_seed(seed)``): the model produces gibberish until the
pretraining pass of ``training/pretrain.py`` (``kgqa train base-tiny``); random weights are all a
backend or trainer test needs. The build is deterministic: the
same texts, seed and sizes give byte-identical weight files.

Example::

    texts = [p.read_text("utf-8") for p in Path("corpus").glob("**/*.md")]
    model_dir = build_tiny_base(Path("/tmp/tiny-qwen"), texts, seed=0, vocab_size=2000)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from kgqa.errors import ConfigError

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

# The fictional manuals' sources shipped with the repository: the default corpus of `kgqa train base-tiny`.
DEFAULT_CORPUS = Path("samples/src")
CORPUS_SUFFIXES = (".md", ".txt")

# Qwen2's own pre-tokenization: digits one by one (numbers stay comparable), letters in runs.
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen's ChatML, with TRL's ``{% generation %}`` markers around what the assistant says (including
# its closing <|im_end|>, so the model learns to stop) for ``assistant_only_loss=True``.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with Qwen's pre-tokenizer, special tokens and chat template.

    Byte-level means every string, including characters never seen in ``texts``, is encodable;
    the merges learnt from the corpus only make common words short.

    Args:
        texts: training text (the corpus Markdown, for instance).
        vocab_size: the largest vocabulary (fewer tokens when the texts have fewer merges).

    Raises:
        ConfigError: if the vocabulary cannot even hold the 256 bytes and the special tokens.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ConfigError(f"vocab_size={vocab_size} is too small: byte-level BPE needs at least 259")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IM_END],
        chat_template=CHATML_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
        split_special_tokens=False,
    )


def build_tiny_base(
    out_dir: Path,
    texts: Iterable[str],
    *,
    seed: int = 0,
    vocab_size: int = 4000,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 2048,
) -> Path:
    """Build and save a randomly initialised tiny Qwen2 causal LM and its tokenizer.

    Args:
        out_dir: the model directory to write (created; existing files are overwritten).
        texts: text to train the tokenizer on.
        seed: seeds the weight initialisation; the same seed gives the same weights.
        vocab_size: the tokenizer's largest vocabulary; the model's embedding table matches the
            vocabulary actually learnt.
        hidden_size: width of the model (must divide by ``num_heads``).
        num_layers: decoder layers.
        num_heads: attention heads.
        num_kv_heads: key/value heads (grouped-query attention as in Qwen2; divides ``num_heads``).
        intermediate_size: width of the MLP.
        max_position_embeddings: longest sequence the rotary embedding is configured for.

    Returns:
        ``out_dir``, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer``.

    Raises:
        ConfigError: if the sizes are inconsistent.
    """
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ConfigError(
            f"hidden_size ({hidden_size}) must divide by num_heads ({num_heads}) and num_heads "
            f"by num_kv_heads ({num_kv_heads})"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, do_sample=False
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _name_tokenizer_class(out_dir / "tokenizer_config.json")
    return out_dir


def read_corpus(paths: Sequence[Path]) -> list[tuple[str, str]]:
    """The corpus as ``(path, text)`` pairs: files as given, folders searched for .md/.txt files.

    The order is deterministic (paths in the order given, folder contents sorted), because the
    tokenizer's merges and the pretraining data order depend on it.

    Raises:
        ConfigError: if a path does not exist, a file is not UTF-8 text, or nothing is found.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path}: corpus path not found")
    texts = []
    for path in found:
        try:
            text = path.read_text(encoding="utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: corpus file is not UTF-8 text ({exc.reason})") from exc
        if text.strip():
            texts.append((str(path), text))
    if not texts:
        joined = ", ".join(str(p) for p in paths) or "(none)"
        raise ConfigError(f"no .md/.txt text found in the corpus paths: {joined}")
    return texts


def _name_tokenizer_class(config_path: Path) -> None:
    """Name the class a real Qwen directory names, so any transformers version (vLLM pins its own)
    loads the tokenizer as Qwen2's fast tokenizer over our ``tokenizer.json``."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "Qwen2Tokenizer"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


__all__ = [
    "CHATML_TEMPLATE",
    "CORPUS_SUFFIXES",
    "DEFAULT_CORPUS",
    "SPECIAL_TOKENS",
    "build_tiny_base",
    "read_corpus",
    "train_tokenizer",
]
