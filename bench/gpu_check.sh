#!/usr/bin/env bash
# The GPU path, unattended, in under 10 minutes on one CUDA GPU (an H100 takes ~5):
#   1. the gpu-marked tests, with no skip allowed (a skip on a CUDA machine is a failure here);
#   2. bench/gpu_bench.py on Gemma-3-270M: bf16 LoRA SFT steps, GRPO steps with vLLM colocated,
#      vLLM serving the base with the SFT and GRPO adapters switched per request;
#   3. the figures (tokens/s, steps/s, peak GPU memory) in one JSON file: $OUT/gpu_check.json.
# Needs: `pip install -e '.[gpu,dev]'` (vLLM), the Gemma folder (kgqa models fetch gemma-270m) and a
# dataset folder (kgqa dataset build, or the one `make train-real` left). Fails loudly otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
KGQA_HOME=${KGQA_HOME:-$PWD/.kgqa}
export KGQA_HOME
OUT=${OUT:-bench/out/gpu}
GEMMA=${GEMMA:-$KGQA_HOME/models/gemma-3-270m}
DATA=${DATA:-$(ls -d "$KGQA_HOME"/train-real/*/dataset 2>/dev/null | tail -1)}
mkdir -p "$OUT"

fail() { echo "gpu_check FAILED: $*" >&2; exit 1; }

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || fail "CUDA is not available"
"$PY" -c "import vllm" 2>/dev/null || fail "vllm is not installed (pip install -e '.[gpu]')"
[ -f "$GEMMA/kgqa_model.json" ] || "$PY" -m kgqa models fetch gemma-270m || fail "no Gemma folder at $GEMMA"
[ -n "$DATA" ] && [ -f "$DATA/chat/train.jsonl" ] || fail "no dataset folder (set DATA=, or run make train-real first)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

start=$(date +%s)
echo "== 1/2 gpu-marked tests"
timeout 300 "$PY" -m pytest -m gpu -q -rs -p no:cacheprovider tests 2>&1 | tee "$OUT/gpu_tests.log"
summary=$(tail -1 "$OUT/gpu_tests.log")
grep -qE "[0-9]+ passed" <<<"$summary" || fail "no gpu test passed: $summary"
grep -qE "failed|error|skipped" <<<"$summary" && fail "gpu tests: $summary (skips count as failures on a CUDA machine)"

echo "== 2/2 SFT (bf16), GRPO (vLLM colocate), vLLM multi-LoRA serving on Gemma-3-270M"
timeout 420 "$PY" bench/gpu_bench.py --base "$GEMMA" --data "$DATA" --out "$OUT/gpu_check.json"
"$PY" - "$OUT/gpu_check.json" "$(( $(date +%s) - start ))" <<'PYEOF'
import json, sys
path, seconds = sys.argv[1], int(sys.argv[2])
report = json.load(open(path))
report["total_seconds"] = seconds
json.dump(report, open(path, "w"), indent=2, ensure_ascii=False)
print(f"gpu_check passed in {seconds}s on {report['device']}: "
      f"SFT {report['sft_bf16']['tokens_per_second']} tokens/s, "
      f"GRPO {report['grpo_vllm_colocate']['steps_per_second']} steps/s, "
      f"vLLM {report['vllm_multi_lora']['batch_tokens_per_second']} tokens/s (3 models in one batch)")
PYEOF
