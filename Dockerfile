# The emostream image: the `emostream` CLI with the worker, the trainer commands and the model code.
# On linux/amd64, torch==2.13.0 from PyPI is the CUDA build: the same image runs on a GPU host (with the NVIDIA
# container runtime) and on CPU (EMOSTREAM_DEVICE=auto picks whichever is there).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    EMOSTREAM_REGISTRY_DIR=/registry \
    EMOSTREAM_STATE_DIR=/state \
    EMOSTREAM_DATA_DIR=/data \
    EMOSTREAM_BROKER_URL=kafka://kafka:9092 \
    EMOSTREAM_WEB_HOST=0.0.0.0 \
    EMOSTREAM_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY emostream ./emostream
COPY models ./models
COPY stream ./stream
RUN pip install . && pip check

VOLUME ["/registry"]
# 6066: a worker's web view (/metrics, /health, /ready); 6067: the trainer's /metrics and /health; 8080: the dashboard.
EXPOSE 6066 6067 8080
ENTRYPOINT ["emostream"]
CMD ["worker"]
