# ClientHub: one image for every role (`run`, `web`, `worker`), configured by CLIENTHUB_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLIENTHUB_HOST=0.0.0.0 CLIENTHUB_DATABASE_URL=sqlite:////data/clienthub.db \
    CLIENTHUB_KEY_FILE=/data/clienthub.key CLIENTHUB_SANDBOX_DB=/data/clienthub-sandbox.db \
    CLIENTHUB_FILES_DIR=/data/files

WORKDIR /app
COPY pyproject.toml README.md alembic.ini requirements.lock ./
COPY alembic ./alembic
COPY hub ./hub
COPY connectors ./connectors
COPY routing_rules ./routing_rules
COPY web ./web
# The audited versions (requirements.lock, as CI installs them). /data and /data/files exist in
# the image owned by the runtime user: Docker copies a directory's ownership into a fresh named
# volume mounted there (compose.yaml mounts /data/files) only when the image has it.
RUN pip install --no-cache-dir -c requirements.lock -e . \
    && useradd --system --no-create-home --home-dir /data clienthub \
    && mkdir -p /data/files \
    && chown -R clienthub:clienthub /data

USER clienthub
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["clienthub"]
CMD ["run"]
