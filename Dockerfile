# casino-gateway image.
#
#   docker build -t casino-gateway:0.1.0 .
#   docker run --rm -p 8080:8080 --env-file deploy/.env \
#     -v "$PWD/deploy/providers.compose.yaml:/etc/casino-gateway/providers.yaml:ro" \
#     casino-gateway:0.1.0
#
# The config is not baked in: mount a providers.yaml at /etc/casino-gateway/providers.yaml
# (a ConfigMap in deploy/k8s, a bind mount in deploy/compose.yaml). It must listen on
# 0.0.0.0:8080. Secrets come from the environment variables its `*_env` keys name.
# The same image runs the provider simulators: `python -m simulators --host 0.0.0.0`.

# ---- build: install the package and its runtime dependencies into a venv ----------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY adapters ./adapters
COPY gateway ./gateway
COPY policies ./policies
COPY simulators ./simulators
# Runtime dependencies only (no `[test]` extra); pip byte-compiles, so the read-only
# runtime filesystem never needs to. uvloop comes with the package on Linux: the build
# fails if the image would lack it.
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/python -c "import uvloop"

# ---- runtime: the venv on a clean slim image, as a non-root user ------------------------
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="casino-gateway" \
      org.opencontainers.image.description="One API for casino frontends over game aggregators and payment providers" \
      org.opencontainers.image.licenses="Apache-2.0"

# GATEWAY_WORKERS: processes serving port 8080 together (SO_REUSEPORT).
# PROMETHEUS_MULTIPROC_DIR: where those processes keep their metric files so any of them
# can answer /metrics for all; must be writable (an emptyDir or tmpfs in deploy/).
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_WORKERS=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
    && install -d -o 10001 -g 10001 -m 0700 /tmp/prometheus \
    && install -d -m 0755 /etc/casino-gateway

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM

# No curl in slim images: the venv's Python asks /healthz (non-2xx or no answer fails).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

# `exec`: the gateway's supervisor is PID 1 and gets SIGTERM itself; it empties
# PROMETHEUS_MULTIPROC_DIR, starts the workers and forwards signals to them. The shell is
# there only to expand GATEWAY_WORKERS.
CMD ["/bin/sh", "-c", "exec casino-gateway run --config /etc/casino-gateway/providers.yaml --workers \"${GATEWAY_WORKERS}\""]
