# syntax=docker/dockerfile:1
# Gnosis worker image.
#
#   docker build -t gnosis:latest .
#   docker run --rm -e GNOSIS_KAFKA__BOOTSTRAP_SERVERS=broker:9092 -p 6066:6066 gnosis:latest
#
# Stage 1 builds wheels for the project and every dependency; stage 2 installs them into a
# slim Python without compilers or build tools and runs as an unprivileged user.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY gnosis ./gnosis
# pip's cache is a build-cache mount: a rebuild after a code change reuses the downloaded
# wheels instead of fetching every dependency again, and the cache never becomes a layer.
RUN --mount=type=cache,target=/root/.cache/pip python -m pip wheel --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="gnosis" \
      org.opencontainers.image.description="Streaming trading-signal engine worker" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GNOSIS_WORKER__WEB_PORT=6066

# The wheels are bind-mounted from the builder, so they never become a layer of this image;
# --no-index: exactly the versions the builder resolved, nothing fetched at this stage.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels /wheels/gnosis_sentiment_engine-*.whl \
    && groupadd --system --gid 10001 gnosis \
    && useradd --system --uid 10001 --gid gnosis --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gnosis \
    && mkdir -p /models

# The worker keeps its state in memory and in Kafka's changelog topics: it writes nothing
# but /tmp. /models: an exported ONNX sentiment model, mounted read-only; point
# GNOSIS_SENTIMENT__MODEL_DIR at it (e.g. /models/finbert-int8). Unset, the lexicon is used.
VOLUME ["/models"]
WORKDIR /tmp
USER 10001:10001
EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:6066/health', timeout=4)"]

ENTRYPOINT ["gnosis"]
CMD ["worker"]
