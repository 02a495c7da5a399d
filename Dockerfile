# pipeline-bot image: a builder stage makes a virtualenv with the project wheel and its dependencies;
# the final stage copies only that venv, the example catalog and .env.example, and runs as a non-root user.
#
#   docker build -t pipeline-bot .
#   docker run --env-file .env -v "$PWD/pipelines.yml:/config/pipelines.yml:ro" -v pipeline-bot-data:/data pipeline-bot
#
# The catalog is read from PIPELINES_FILE=/config/pipelines.yml: mount yours there (see docs/DEPLOY.md).
# BASE_IMAGE is a build argument so that a local stand-in can replace the registry image
# (scripts/container-check builds with a Debian bookworm base made on the machine).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first, from the lock alone (the versions CI tested, each checked against its hash): this layer
# stays cached until the lock changes. requirements.txt is made from pyproject.toml by scripts/lock.
COPY requirements.txt ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.txt
# Then the project itself, as a wheel that adds no dependency (no editable install, no sources left behind).
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-deps /tmp/wheels/*.whl \
 && /opt/venv/bin/pip uninstall -y pip

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIPELINES_FILE=/config/pipelines.yml \
    DATABASE_URL=sqlite+aiosqlite:////data/pipeline-bot.db \
    PORT=3000 \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072
# glibc's malloc set for a long-lived process from its first allocation (docs/PERFORMANCE.md, "Sixth pass"): the
# bot sets the same at start-up (bot/ops/memory.py), but set here they also cover what start-up allocated first
RUN groupadd --system --gid 10001 bot \
 && useradd --system --uid 10001 --gid bot --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bot \
 && mkdir -p /config /data \
 && chown bot:bot /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The examples, so that `pipeline-bot check --env-file .env.example --catalog pipelines.example.yml` works here.
COPY pipelines.example.yml .env.example ./
USER bot:bot
VOLUME ["/data"]
EXPOSE 3000
# /healthz answers in both Socket Mode and HTTP mode; no curl in the image, so Python's urllib asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${PORT:-3000}/healthz', timeout=4)" || exit 1
ENTRYPOINT ["pipeline-bot"]
CMD ["run"]
