# casino-gateway image.
#
#   docker build -t casino-gateway:0.1.0 .
#   python -m simulators --print-env --out deploy     # throwaway deploy/.env and PEM keys
#   docker run --rm -p 8080:8080 --env-file deploy/.env -v "$PWD/deploy:$PWD/deploy:ro" \
#     -v "$PWD/deploy/providers.compose.yaml:/etc/casino-gateway/providers.yaml:ro" \
#     casino-gateway:0.1.0
#
# The config is not baked in: mount a providers.yaml at /etc/casino-gateway/providers.yaml
# (a ConfigMap in deploy/k8s, a bind mount in deploy/compose.yaml). It must listen on
# 0.0.0.0:8080. Secrets come from the environment variables its `*_env` keys name, or for
# a NAME that is not set, from the file NAME_FILE names (the .env above names the PEM keys
# by their path on the host: hence the folder mounted at the same path).
# Money state is in its ledger: PostgreSQL in deploy/ (`ledger.url_env`), or by default
# SQLite under the working directory, the /var/lib/casino-gateway volume (see below).
# The same image runs the provider simulators: `python -m simulators --host 0.0.0.0`.

# ---- build: install the package and its runtime dependencies into a venv ----------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY adapters ./adapters
COPY gateway ./gateway
COPY policies ./policies
COPY simulators ./simulators
# The runtime dependencies and the `speed` extra (uvloop), at the versions and hashes of
# requirements.lock and nothing else (no `[test]` extra); then the package itself, resolving
# nothing more, and `pip check` fails the build if the lock left a dependency out; the build
# fails too if the image would lack uvloop. pip byte-compiles, so the read-only runtime
# filesystem never needs to.
RUN /opt/venv/bin/pip install --no-deps --require-hashes -r requirements.lock \
    && /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip check \
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
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/casino-gateway \
    && install -d -m 0755 /etc/casino-gateway

COPY --from=build /opt/venv /opt/venv

# The working directory, the gateway user's: a config without a `ledger` block keeps money
# state in SQLite at data/ledger.db relative to it, /var/lib/casino-gateway/data/ledger.db.
# A volume, so it is writable under a read-only root filesystem and outlives the container:
# `docker run` gives it an anonymous volume; name one (-v casino-ledger:/var/lib/casino-gateway)
# to keep it across `docker rm`. Kubernetes ignores VOLUME: mount a PersistentVolumeClaim
# there for SQLite, or use a PostgreSQL ledger as deploy/k8s does (nothing is written here).
WORKDIR /var/lib/casino-gateway
VOLUME ["/var/lib/casino-gateway"]

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
