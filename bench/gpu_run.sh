#!/usr/bin/env bash
# The prepared GPU check (run through the device tool, never in CI): recipe sweep on emotion, GPU inference throughput,
# GoEmotions multi-label. Expects .gpu/ carried beside the tree, as bench/gpu_carry.sh builds it: base/ (the packaged
# MiniLM, weights stored in fp16 to fit the transfer limit; training loads them as fp32), datasets/ (copies of
# ../shared/datasets), whl/ (structlog, orjson). Every step writes its results to $OUT as it goes, so a step cut by its
# timeout keeps what it finished. Candidates, seeds and limits are variables (a device call may run 600 s at most):
# EMOTION_CANDIDATES, EMOTION_SEEDS, EMOTION_LIMIT, GOEMOTIONS_CANDIDATES, GOEMOTIONS_SEEDS, GOEMOTIONS_LIMIT;
# EMOTION=0, INFERENCE=0 (it needs the emotion step's best model) or GOEMOTIONS=0 skip a step.
# PARALLEL=1 trains every emotion seed and every GoEmotions candidate in its own process, all at once on the one GPU
# (a MiniLM step leaves most of an H100/H200 idle; scores are unchanged, train_seconds are not comparable then). It
# needs INFERENCE=0; the results are merged into sweep_emotion.jsonl / sweep_goemotions.jsonl and errors.txt at the end.
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
EMOTION_CANDIDATES=${EMOTION_CANDIDATES:-full,full-cw,full-bs16,full-8ep-cw} EMOTION_SEEDS=${EMOTION_SEEDS:-42}
GOEMOTIONS_CANDIDATES=${GOEMOTIONS_CANDIDATES:-full-cw,full} GOEMOTIONS_SEEDS=${GOEMOTIONS_SEEDS:-42}
emotion=(python3 bench/recipe_sweep.py --data "$G/datasets/emotion")
goemotions=(python3 bench/recipe_sweep.py --data "$G/datasets/goemotions" --multi-label)
if [ "${PARALLEL:-0}" = 1 ]; then
  export OMP_NUM_THREADS=3  # five or so trainings share 16 cores: their CPU work (int8 checks) must not oversubscribe
  [ "${EMOTION:-1}" = 0 ] || for seed in ${EMOTION_SEEDS//,/ }; do
    step "sweep_emotion_$seed.jsonl" "${EMOTION_LIMIT:-230}" "${emotion[@]}" --candidates "$EMOTION_CANDIDATES" --seeds "$seed" & done
  [ "${GOEMOTIONS:-1}" = 0 ] || for name in ${GOEMOTIONS_CANDIDATES//,/ }; do
    step "sweep_goemotions_$name.jsonl" "${GOEMOTIONS_LIMIT:-230}" "${goemotions[@]}" --candidates "$name" --seeds "$GOEMOTIONS_SEEDS" & done
  wait
  # The device tool returns at most 8 files: one results file per dataset, one file of error tails.
  for set in emotion goemotions; do
    cat "$OUT"/sweep_"$set"_*.jsonl > "$OUT/sweep_$set.jsonl" 2>/dev/null; rm -f "$OUT"/sweep_"$set"_*.jsonl
  done
  tail -n 5 "$OUT"/*.err 2>/dev/null | cut -c1-300 > "$OUT/errors.txt"; rm -f "$OUT"/*.err  # none if nothing ran
else
  [ "${EMOTION:-1}" = 0 ] || step sweep_emotion.jsonl "${EMOTION_LIMIT:-230}" "${emotion[@]}" \
    --candidates "$EMOTION_CANDIDATES" --seeds "$EMOTION_SEEDS" --save-best /tmp/best_emotion
  [ "${INFERENCE:-1}" = 0 ] || step inference_gpu.md 80 python3 bench/inference.py --model /tmp/best_emotion \
    --data "$G/datasets/emotion/test.jsonl" --device cuda
  [ "${GOEMOTIONS:-1}" = 0 ] || step sweep_goemotions.jsonl "${GOEMOTIONS_LIMIT:-230}" "${goemotions[@]}" \
    --candidates "$GOEMOTIONS_CANDIDATES" --seeds "$GOEMOTIONS_SEEDS"
  tail -n 3 "$OUT"/*.err | cut -c1-300
fi
for f in "$OUT"/steps.txt "$OUT"/*.jsonl "$OUT"/inference_gpu.md "$OUT"/errors.txt; do [ ! -f "$f" ] || cat "$f"; done
