"""`kgqa train base-tiny` and `kgqa train sft` (see training/pretrain.py and training/sft.py)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from kgqa.commands.common import JsonOpt, err, load_settings, out, print_json
from kgqa.commands.models import register_after_training

train_app = typer.Typer(help="Train models: the tiny offline base, LoRA SFT.", no_args_is_help=True)


@train_app.command("base-tiny")
def base_tiny(
    out_dir: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    seed: Annotated[int, typer.Option(help="Seeds the weights and the pretraining data order.")] = 0,
    corpus: Annotated[
        list[Path] | None,
        typer.Option("--corpus", help="Corpus file or folder of .md/.txt (repeatable; default: samples/src)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Pretraining steps (default 200; 0: random weights).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a tiny Qwen2 (tokenizer trained on the corpus and the prompts' wording) and pretrain it on that text."""
    from training.pretrain import TinyBaseConfig, build_pretrained_base
    from training.tiny_base import DEFAULT_CORPUS

    load_settings()
    config = TinyBaseConfig(seed=seed, **({"steps": steps} if steps is not None else {}))
    result = build_pretrained_base(out_dir, corpus or [DEFAULT_CORPUS], config, progress=not as_json)
    if as_json:
        print_json(asdict(result))
    else:
        out.print(
            f"Tiny base in {out_dir}: {result.steps} steps on {result.tokens} tokens "
            f"({len(result.corpus_files)} files), corpus loss {result.corpus_loss_before:.2f} -> "
            f"{result.corpus_loss_after:.2f} in {result.seconds:.0f}s"
        )


@train_app.command("sft")
def sft(
    base: Annotated[Path, typer.Option("--base", help="Base model folder (a real Qwen or base-tiny's).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset folder (manifest.json, chat/train.jsonl, val).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder: adapter, tokenizer, curves, records.")],
    config: Annotated[
        Path | None, typer.Option(help="SFT config YAML/JSON (default: the brief's, training/configs/sft.yaml).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run folder's last checkpoint.")] = False,
    max_steps: Annotated[int | None, typer.Option(help="Override max_steps (-1: epochs).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    device: Annotated[str | None, typer.Option(help="cuda, cpu... (default: cuda when available).")] = None,
    register: Annotated[bool, typer.Option(help="Register the run as a ModelVersion (needs Neo4j).")] = True,
    as_json: JsonOpt = False,
) -> None:
    """LoRA SFT with TRL on the dataset's chat split; evaluation, early stopping, checkpoints."""
    from training.sft import SftRunner, result_to_dict
    from training.sft_config import SftConfig

    load_settings()
    cfg = SftConfig.load(config) if config else SftConfig()
    cfg = cfg.with_overrides(max_steps=max_steps, seed=seed)
    result = SftRunner(cfg, device=device, progress=not as_json).run(base, data, out_dir, resume=resume)
    model_id = register_after_training(result.run_dir, "sft") if register else None
    if as_json:
        print_json({**result_to_dict(result), "model_id": model_id})
        return
    m = result.metrics
    out.print(
        f"Adapter in {result.run_dir}: {result.steps} steps, train loss {m['first_train_loss']:.3f} -> "
        f"{m['final_train_loss']:.3f}, eval loss {m['eval_loss']:.3f} (best {m['best_eval_loss']:.3f}); "
        f"{m['steps_per_second']:.2f} steps/s, {m['tokens_per_second']:.0f} tokens/s, peak RSS {m['peak_rss_mb']:.0f} MB"
    )
    if result.stopped_early:
        err.print(f"stopped early at step {result.steps}: eval loss stopped improving")


__all__ = ["train_app"]
