# One image for every role: `api`, `worker`, `migrate` (scripts/docker-entrypoint.sh).
# The worker needs CUDA torch: TORCH_VARIANT picks the PyTorch wheel index (cu124, cu126, cpu).
# The API never imports torch, so it runs from the same image without a GPU.
#
#   docker build -t meow .                              # CUDA 12.4 torch
#   docker build --build-arg TORCH_VARIANT=cpu -t meow:cpu .
FROM python:3.11-slim

ARG TORCH_VARIANT=cu124
ARG TORCH_SPEC="torch>=2.6,<2.14"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HOME=/models/hf \
    MEOW_CACHE_DIR=/models/meow \
    MEOW_MODEL_ROOTS=/models \
    MEOW_ARTIFACT_DIR=/artifacts \
    MEOW_DATA_DIR=/data

WORKDIR /app

# torch first, from the chosen index, so `pip install .` finds it satisfied (layer cached on code edits)
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "${TORCH_SPEC}"

COPY pyproject.toml README.md alembic.ini ./
COPY meow_engine ./meow_engine
COPY service ./service
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
COPY scripts/docker-entrypoint.sh ./scripts/docker-entrypoint.sh

# editable: migrations/ and alembic.ini stay next to the code that locates them
RUN pip install -e . \
 && useradd --create-home --uid 1000 meow \
 && mkdir -p /models /artifacts /data \
 && chown -R meow:meow /models /artifacts /data

USER meow
EXPOSE 8000
ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["api"]
