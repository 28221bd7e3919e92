#!/usr/bin/env bash
# Builds .gpu/ (ignored by git) for bench/gpu_run.sh, the prepared GPU check of training: base/ (the packaged MiniLM
# with its weights stored in fp16, to fit the device tool's 64 MiB transfer; training loads them as fp32), datasets/
# (copies of ../shared/datasets/{emotion,goemotions}: the device cannot read ../shared) and whl/ (the two dependencies
# the device's Python lacks for training). Then, from a session lent a device, one call of at most 600 s (issue 14:
# the `full` recipe's 3-seed mean on emotion and GoEmotions candidates, each its own process on the one GPU; a
# session has 15 minutes of device time, the machine's start included), carrying [".gpu/base", ".gpu/datasets",
# ".gpu/whl"] (52 MB; all of .gpu with the stream check's files is over the 64 MiB limit):
#   PARALLEL=1 EMOTION_CANDIDATES=full EMOTION_SEEDS=1,2,3 EMOTION_LIMIT=330 INFERENCE=0 \
#     GOEMOTIONS_CANDIDATES=full-12ep-cw,full-12ep-cw-llrd GOEMOTIONS_LIMIT=550 bash bench/gpu_run.sh
set -eu
cd "$(dirname "$0")/.."
G=.gpu
SHARED=${EMOSTREAM_SHARED:-../shared}
rm -rf "$G/base" "$G/datasets" "$G/whl"
mkdir -p "$G/datasets" "$G/whl"
.venv/bin/python - "$G/base" <<'PY'
import sys

import torch
from transformers import AutoModel, AutoTokenizer

from emostream.settings import Settings

base = Settings.from_env().base_model
AutoTokenizer.from_pretrained(base).save_pretrained(sys.argv[1])
AutoModel.from_pretrained(base, torch_dtype=torch.float16).save_pretrained(sys.argv[1])
PY
cp -r "$SHARED/datasets/emotion" "$SHARED/datasets/goemotions" "$G/datasets/"
versions=$(.venv/bin/python -c "import structlog, orjson; print(f'structlog=={structlog.__version__} orjson=={orjson.__version__}')")
# shellcheck disable=SC2086
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$G/whl" $versions
du -sh "$G"/*
