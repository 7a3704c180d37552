# mailproc in a container: the daemon as the entry point, `mailproc status` as the health check.
#
#   docker build -t mailproc-desk .
#   docker compose up -d          # with PostgreSQL: compose.yaml
#
# The configuration is mounted at /etc/mailproc/mailproc.toml; secrets come as files
# (Docker secrets under /run/secrets, named by the configuration's *_file settings) or as
# environment variables. State (a SQLite database, if used) lives in /var/lib/mailproc.
FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mailproc ./mailproc
COPY templates ./templates
COPY config ./config
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/mailproc --create-home \
        --shell /usr/sbin/nologin mailproc \
    && install -d -o mailproc -g mailproc -m 0700 /var/lib/mailproc \
    && install -d -m 0755 /etc/mailproc
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV MAILPROC_CONFIG=/etc/mailproc/mailproc.toml \
    TZ=UTC \
    PYTHONUNBUFFERED=1
USER mailproc
WORKDIR /var/lib/mailproc
VOLUME ["/var/lib/mailproc"]
# 0 OK, 1 WARNING, 2 CRITICAL: Docker counts any non-zero as unhealthy, so a warning (a
# source failing for less than status_max_age_seconds) is reported too.
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 \
    CMD ["mailproc", "status"]
# `mailproc init` first: a no-op on a current schema, and safe when several containers start
# together (migrations run under a database lock). `exec` so that SIGTERM reaches the daemon,
# which finishes the mail in hand and exits 0.
ENTRYPOINT ["/bin/sh", "-c", "mailproc init && exec mailproc run"]
