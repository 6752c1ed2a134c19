"""`kgqa train grpo`: GRPO of an SFT adapter with rewards judged by the graph (training/grpo.py).

Registered by the lead in kgqa/cli.py, e.g. ``train_app.command("grpo")(grpo_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kgqa.commands.common import JsonOpt, err, load_settings, out, print_json
from kgqa.commands.models import register_after_training


def grpo_command(
    base: Annotated[Path, typer.Option("--base", help="Base model folder (a real Qwen or base-tiny's).")],
    adapter: Annotated[
        Path, typer.Option("--adapter", help="SFT run folder whose LoRA adapter GRPO continues.")
    ],
    prompts: Annotated[
        Path,
        typer.Option("--prompts", help="GRPO prompt set: DATASET_DIR/grpo/prompts.jsonl, or DATASET_DIR."),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Run folder: adapter, rewards.csv/png, completions.")
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="GRPO config YAML/JSON (default: training/configs/grpo.yaml)."),
    ] = None,
    eval_prompts: Annotated[
        Path | None,
        typer.Option(help="Held-out prompts scored before and after (default: DATASET_DIR/grpo/eval.jsonl)."),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Override max_steps (-1: epochs).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    evidence: Annotated[
        str | None,
        typer.Option(help="contexts | graph | auto: where cited clauses are judged (default: config)."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cuda, cpu... (default: cuda when available).")] = None,
    register: Annotated[bool, typer.Option(help="Register the run as a ModelVersion (needs Neo4j).")] = True,
    as_json: JsonOpt = False,
) -> None:
    """GRPO (TRL) from an SFT adapter: citation, hallucination, correctness, format, abstention, length rewards."""
    from training.grpo import GrpoRunner
    from training.grpo_config import GrpoConfig

    settings = load_settings()
    cfg = GrpoConfig.load(config)
    cfg = cfg.with_overrides(max_steps=max_steps, seed=seed)
    if evidence is not None:
        cfg = cfg.with_overrides(rewards={**cfg.rewards.model_dump(), "evidence": evidence})
    prompts_path = prompts / "grpo" / "prompts.jsonl" if prompts.is_dir() else prompts
    if eval_prompts is None and prompts.is_dir() and (prompts / "grpo" / "eval.jsonl").is_file():
        eval_prompts = prompts / "grpo" / "eval.jsonl"
    if eval_prompts is not None and not eval_prompts.read_text(encoding="utf-8").strip():
        err.print(f"[yellow]{eval_prompts} is empty: no held-out GRPO evaluation[/]")
        eval_prompts = None
    driver = _driver(settings, cfg.rewards.evidence)
    try:
        runner = GrpoRunner(cfg, driver=driver, device=device, progress=not as_json)
        result = runner.run(base, adapter, prompts_path, out_dir, eval_prompts=eval_prompts)
    finally:
        if driver is not None:
            driver.close()
    model_id = register_after_training(result.run_dir, "grpo") if register else None
    if as_json:
        print_json({**result.to_dict(), "model_id": model_id})
        return
    m = result.metrics
    comps = ", ".join(
        f"{name} {v['first']:.2f}->{v['last']:.2f}"
        for name, v in m["components"].items()
        if v["first"] is not None and v["last"] is not None
    )
    out.print(
        f"GRPO adapter in {result.run_dir}: {result.steps} steps, reward {_f(result.reward_first)} -> "
        f"{_f(result.reward_last)} ({comps}); KL {_f(m['kl_last'])}; evidence {m['evidence']} "
        f"({m['graph_reads']} graph reads for {m['batches_scored']} batches); "
        f"{m['steps_per_second']} steps/s, peak RSS {m['peak_rss_mb']:.0f} MB"
    )
    if m.get("eval"):
        b, a = m["eval"]["before"] or {}, m["eval"]["after"] or {}
        out.print(
            f"held-out reward ({m['eval']['prompts']} prompts): {_f(b.get('reward'))} -> {_f(a.get('reward'))}"
        )
    err.print(f"curves: {result.run_dir / 'rewards.csv'} and rewards.png; completions: completions.jsonl")


def _driver(settings: Any, mode: str) -> Any:
    """A connected driver for graph-judged rewards, ``None`` for contexts (or auto without Neo4j).

    Raises:
        GraphUnavailable: ``evidence: graph`` and Neo4j does not answer.
    """
    if mode == "contexts":
        return None
    from kgqa.errors import GraphUnavailable
    from kgqa.wiring import build_driver

    driver = build_driver(settings, check=True)
    try:
        driver.verify_connectivity()
    except Exception as exc:  # neo4j raises several types for "not there"
        driver.close()
        if mode == "graph":
            raise GraphUnavailable(
                f"Neo4j at {settings.neo4j_uri} is unavailable ({exc}); start it (kgqa neo4j start) "
                "or pass --evidence contexts"
            ) from exc
        err.print(
            f"[yellow]Neo4j at {settings.neo4j_uri} unavailable: rewards judge the prompts' contexts only[/]"
        )
        return None
    return driver


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


__all__ = ["grpo_command"]
