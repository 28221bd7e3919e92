#!/usr/bin/env bash
# The prepared GPU check (run through the device tool, never in CI): recipe sweep on emotion, GPU inference throughput,
# GoEmotions multi-label. Expects .gpu/ carried beside the tree, as bench/gpu_carry.sh builds it: base/ (the packaged
# MiniLM, weights stored in fp16 to fit the transfer limit; training loads them as fp32), datasets/ (copies of
# ../shared/datasets), whl/ (structlog, orjson). Every step writes its results to $OUT as it goes, so a step cut by its
# timeout keeps what it finished. Candidates, seeds and limits are variables (a device call may run 600 s at most):
# EMOTION_CANDIDATES, EMOTION_SEEDS, EMOTION_LIMIT, GOEMOTIONS_CANDIDATES, GOEMOTIONS_SEEDS, GOEMOTIONS_LIMIT;
# EMOTION=0, INFERENCE=0 (it needs the emotion step's best model) or GOEMOTIONS=0 skip a step.
set -u
G=$PWD/.gpu
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 EMOSTREAM_BASE_MODEL=$G/base EMOSTREAM_REGISTRY_DIR=/tmp/registry
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  nproc; } > "$OUT/env.txt" 2>&1
step() { local name=$1 limit=$2; shift 2; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name" 2> "$OUT/$name.err"; echo "$name rc=$? ${SECONDS}s->$((SECONDS - t0))s" | tee -a "$OUT/steps.txt"; }
[ "${EMOTION:-1}" = 0 ] || step sweep_emotion.jsonl "${EMOTION_LIMIT:-230}" python3 bench/recipe_sweep.py --data "$G/datasets/emotion" \
  --candidates "${EMOTION_CANDIDATES:-full,full-cw,full-bs16,full-8ep-cw}" --seeds "${EMOTION_SEEDS:-42}" \
  --save-best /tmp/best_emotion
[ "${INFERENCE:-1}" = 0 ] || step inference_gpu.md 80 python3 bench/inference.py --model /tmp/best_emotion \
  --data "$G/datasets/emotion/test.jsonl" --device cuda
[ "${GOEMOTIONS:-1}" = 0 ] || step sweep_goemotions.jsonl "${GOEMOTIONS_LIMIT:-230}" python3 bench/recipe_sweep.py --data "$G/datasets/goemotions" \
  --multi-label --candidates "${GOEMOTIONS_CANDIDATES:-full-cw,full}" --seeds "${GOEMOTIONS_SEEDS:-42}"
tail -n 3 "$OUT"/*.err | cut -c1-300
cat "$OUT"/steps.txt "$OUT"/*.jsonl "$OUT"/inference_gpu.md 2>/dev/null
