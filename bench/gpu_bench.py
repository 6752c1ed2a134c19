"""The GPU path on Gemma-3-270M, measured: bf16 SFT steps, GRPO steps with vLLM (colocate), and
vLLM serving the base with two LoRA adapters switched per request. Figures go to one JSON file.

Run by ``bench/gpu_check.sh`` on a CUDA machine. Every step raises on failure (no skips): a
machine with CUDA where this cannot run is a broken GPU path.

    python bench/gpu_bench.py --base $KGQA_HOME/models/gemma-3-270m --data RUN/dataset --out OUT/gpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CONFIGS = REPO / "training" / "configs"


def sft_steps(base: Path, data: Path, out: Path, steps: int) -> dict:
    """bf16 LoRA SFT (sft-gemma.yaml shape, a GPU batch) for ``steps`` optimizer steps."""
    from training.sft import SftRunner
    from training.sft_config import SftConfig

    cfg = SftConfig.load(CONFIGS / "sft-gemma.yaml").with_overrides(
        max_steps=steps, per_device_train_batch_size=8, gradient_accumulation_steps=1, precision="bf16",
        gradient_checkpointing=True, save_steps=steps, logging_steps=1,
    )  # fmt: skip
    m = SftRunner(cfg, device="cuda", progress=False).run(base, data, out).metrics
    assert m["steps"] == steps and m["final_train_loss"] is not None, m
    return {k: m[k] for k in ("steps", "train_seconds", "steps_per_second", "tokens_per_second", "peak_cuda_mb",
                              "first_train_loss", "final_train_loss")}  # fmt: skip


def grpo_steps(base: Path, sft: Path, data: Path, out: Path, steps: int) -> dict:
    """bf16 GRPO from the SFT adapter with vLLM generating in-process (colocate)."""
    from training.grpo import GrpoRunner
    from training.grpo_config import GrpoConfig

    cfg = GrpoConfig.load(CONFIGS / "grpo-gemma.yaml").with_overrides(
        max_steps=steps, use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.25,
        precision="bf16", per_device_train_batch_size=8, num_generations=8, max_completion_length=128,
    )  # fmt: skip
    runner = GrpoRunner(cfg, device="cuda", progress=False)
    result = runner.run(base, sft, data / "grpo" / "prompts.jsonl", out)
    m = result.metrics
    assert m["use_vllm"] is True and m["steps"] == steps, m
    return {k: m[k] for k in ("steps", "train_seconds", "steps_per_second", "peak_cuda_mb", "reward_first",
                              "reward_last", "components")}  # fmt: skip


def vllm_serving(base: Path, adapters: dict[str, Path], data: Path, requests: int) -> dict:
    """The serving backend with two adapters: per-request switching, then one mixed batch."""
    from serving.backends.vllm_backend import VllmBackend
    from training.evaluate import prompt_messages, read_records

    records = (
        read_records(data / "chat" / "test_unseen.jsonl")[:requests]
        or read_records(data / "chat" / "val.jsonl")[:requests]
    )
    backend = VllmBackend(base, max_new_tokens=128, gpu_memory_utilization=0.5, max_lora_rank=64)
    for name, path in adapters.items():
        backend.load_adapter(path, name)
    names = [None, *adapters]
    seen: dict[str, int] = {}
    tokens, started = 0, time.perf_counter()
    for i, rec in enumerate(records):
        name = names[i % len(names)]
        backend.set_adapter(name)
        g = backend.generate_messages(prompt_messages(rec))
        assert g.model_id == (f"{backend.base_name}+{name}" if name else backend.base_name), g.model_id
        seen[g.model_id] = seen.get(g.model_id, 0) + 1
        tokens += g.completion_tokens
    switched_s = time.perf_counter() - started
    assert len(seen) == len(names), seen  # every adapter (and the base) answered
    # one batch, each request with its own adapter: vLLM's multi-LoRA scheduling
    llm = backend._llm
    params = backend._vllm.SamplingParams(max_tokens=128, temperature=0.0)
    prompts = [prompt_messages(r) for r in records]
    loras = [
        backend._adapters.get(names[i % len(names)]) if names[i % len(names)] else None
        for i in range(len(prompts))
    ]
    started = time.perf_counter()
    outputs = llm.chat(prompts, params, use_tqdm=False, lora_request=loras)
    batch_s = time.perf_counter() - started
    batch_tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    assert batch_tokens > 0
    return {
        "requests": len(records),
        "answers_per_model": seen,
        "switched_tokens_per_second": round(tokens / switched_s, 1),
        "batch_tokens_per_second": round(batch_tokens / batch_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a dataset folder (kgqa dataset build)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file of figures")
    parser.add_argument("--work", type=Path, default=None, help="run folders (default: beside --out)")
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--grpo-steps", type=int, default=4)
    parser.add_argument("--requests", type=int, default=24)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("CUDA is not available: this benchmark is for a GPU machine")
    work = args.work or args.out.parent / "gpu-runs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    sft_dir, grpo_dir = work / f"sft-{stamp}", work / f"grpo-{stamp}"
    report: dict = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "base": str(args.base),
    }
    for name, fn in (
        ("sft_bf16", lambda: sft_steps(args.base, args.data, sft_dir, args.sft_steps)),
        ("grpo_vllm_colocate", lambda: grpo_steps(args.base, sft_dir, args.data, grpo_dir, args.grpo_steps)),
        (
            "vllm_multi_lora",
            lambda: vllm_serving(args.base, {"sft": sft_dir, "grpo": grpo_dir}, args.data, args.requests),
        ),
    ):
        started = time.perf_counter()
        report[name] = fn()
        report[name]["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(name, json.dumps(report[name], ensure_ascii=False), flush=True)
        torch.cuda.empty_cache()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
