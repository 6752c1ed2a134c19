"""How a QA dataset is built: one config, composed of the configs of each stage.

Loaded from YAML (``training/configs/dataset.yaml`` documents every field); the CLI's flags
override the file. The resolved config is written into the dataset's ``manifest.json`` so a
dataset can be rebuilt exactly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kgqa.errors import ConfigError
from training.config_files import read_mapping
from training.datagen.augment import AugmentConfig
from training.datagen.export import ExportConfig
from training.datagen.llm_client import LlmConfig
from training.datagen.quality import QualityConfig
from training.datagen.splits import SplitConfig
from training.datagen.template_gen import TemplateGenConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "dataset.yaml"


class LlmStageConfig(BaseModel):
    """When and how the LLM writes pairs besides the templates (off without an endpoint)."""

    model_config = ConfigDict(extra="forbid")

    client: LlmConfig | None = None
    #: question types the LLM writes, one target per clause and type (where the clause fits it)
    qtypes: list[str] = Field(default_factory=lambda: ["definition", "fact", "obligation", "procedure"])
    #: LLM targets per clause (0 = none); capped by ``max_targets`` overall
    per_clause: int = 1
    max_targets: int | None = None
    #: regenerations of a pair the verifier rejected, before it is dropped with its reason
    max_regenerations: int = 2
    #: ask the LLM to rate every pair (1..5); low ratings drop the pair
    judge: bool = False
    #: paraphrase questions with the LLM (else the rule-based paraphraser)
    paraphrase: bool = False


class DatasetConfig(BaseModel):
    """Every stage's settings; ``seed`` is handed to each stage so one number fixes the build."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 13
    templates: Path | None = None
    generation: TemplateGenConfig = Field(default_factory=TemplateGenConfig)
    llm: LlmStageConfig = Field(default_factory=LlmStageConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    splits: SplitConfig = Field(default_factory=SplitConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    @classmethod
    def load(cls, path: Path | None = None) -> DatasetConfig:
        """The config in ``path`` (default: the shipped ``configs/dataset.yaml``)."""
        path = path or DEFAULT_CONFIG
        data = read_mapping(path, "dataset config")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid dataset config: {exc}") from exc

    def seeded(self) -> DatasetConfig:
        """A copy where every stage uses this config's seed."""
        data = self.model_dump()
        for stage in ("generation", "augment", "splits", "export"):
            if "seed" in data[stage]:
                data[stage]["seed"] = self.seed
        return DatasetConfig.model_validate(data)


__all__ = ["DEFAULT_CONFIG", "DatasetConfig", "LlmStageConfig"]
