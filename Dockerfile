# runyard tracking server: PostgreSQL and S3-compatible storage drivers included.
#
#   docker build -t runyard .
#   docker run -p 5000:5000 runyard                      # SQLite + local artifacts in /data
#   docker run -p 5000:5000 \
#     -e MLFLOW_BACKEND_STORE_URI=postgresql://runyard:pw@db:5432/runyard \
#     -e MLFLOW_ARTIFACTS_DESTINATION=s3://bucket/artifacts \
#     -e AWS_ACCESS_KEY_ID=... -e AWS_SECRET_ACCESS_KEY=... runyard
#
# Every `runyard server` option comes from RUNYARD_* or MLFLOW_* variables (docs/environment.md);
# see docs/deploy.md for Compose, nginx and Kubernetes set-ups.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/runyard-src
COPY pyproject.toml README.md ./
COPY runyard ./runyard
RUN pip install ".[postgres,s3]" \
    && cd / && rm -rf /opt/runyard-src \
    && useradd --create-home --uid 10001 --user-group runyard \
    && mkdir /data && chown runyard:runyard /data

USER runyard
# Without other settings the server keeps ./runyard.db and ./runyard-artifacts here.
WORKDIR /data
VOLUME ["/data"]

EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; port = os.environ.get('RUNYARD_PORT') or os.environ.get('MLFLOW_PORT') or '5000'; urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4)"

# Host 0.0.0.0 so the port is reachable from outside the container; the rest (store URIs,
# artifacts destination, workers, allowed hosts...) comes from the environment.
CMD ["runyard", "server", "--host", "0.0.0.0"]
