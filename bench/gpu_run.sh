#!/usr/bin/env bash
# The prepared GPU check (run through the device tool, never in CI): recipe sweep on emotion, GPU inference throughput,
# GoEmotions multi-label. Expects .gpu/ carried beside the tree: base/ (the packaged MiniLM, weights stored in fp16 to
# fit the transfer limit; training loads them as fp32), datasets/ (copies of ../shared/datasets), whl/ (structlog,
# orjson). Every step writes its results to $OUT as it goes, so a step cut by its timeout keeps what it finished.
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
step sweep_emotion.jsonl 230 python3 bench/recipe_sweep.py --data "$G/datasets/emotion" \
  --candidates "${EMOTION_CANDIDATES:-full,full-cw,full-bs16,full-8ep-cw}" --save-best /tmp/best_emotion
step inference_gpu.md 80 python3 bench/inference.py --model /tmp/best_emotion --data "$G/datasets/emotion/test.jsonl" \
  --device cuda
step sweep_goemotions.jsonl 230 python3 bench/recipe_sweep.py --data "$G/datasets/goemotions" --multi-label \
  --candidates "${GOEMOTIONS_CANDIDATES:-full-cw,full}"
tail -n 3 "$OUT"/*.err | cut -c1-300
cat "$OUT"/steps.txt "$OUT"/*.jsonl "$OUT"/inference_gpu.md
