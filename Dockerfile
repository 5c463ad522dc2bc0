# ClientHub: one image for every role (`run`, `web`, `worker`), configured by CLIENTHUB_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CLIENTHUB_HOST=0.0.0.0 CLIENTHUB_DATABASE_URL=sqlite:////data/clienthub.db \
    CLIENTHUB_KEY_FILE=/data/clienthub.key CLIENTHUB_SANDBOX_DB=/data/clienthub-sandbox.db

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY hub ./hub
COPY connectors ./connectors
COPY routing_rules ./routing_rules
COPY web ./web
RUN pip install --no-cache-dir -e . && useradd --system --home /data clienthub \
    && mkdir -p /data && chown clienthub /data

USER clienthub
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["clienthub"]
CMD ["run"]
