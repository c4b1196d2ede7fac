"""The deployment files parse and agree with the code: Dockerfile, docker-compose.yml and the
Kubernetes manifests in docs/deploy.md (Docker itself is not needed to check them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from runyard.cli import main
from runyard.config import ENV

ROOT = Path(__file__).resolve().parents[1]
#: Variables read by boto3 rather than runyard.
AWS_NAMES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}


def _known_env_names() -> set[str]:
    names = {var.runyard_name for var in ENV.all()}
    names |= {var.mlflow_name for var in ENV.all() if var.mlflow_fallback}
    return names | AWS_NAMES


def _check_env_names(names: list[str]) -> None:
    unknown = sorted(set(names) - _known_env_names())
    assert not unknown, f"not declared in runyard/config.py: {unknown}"


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def _k8s_documents() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_dockerfile_essentials() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, flags=re.MULTILINE)
    install = re.search(r'pip install "\.\[([\w,]+)\]"', text)
    assert install is not None
    assert set(install.group(1).split(",")) == {"postgres", "s3"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    for extra in ("postgres", "s3"):
        assert re.search(rf"^{extra} = \[", pyproject, flags=re.MULTILINE), extra
    assert re.search(r"^USER runyard$", text, flags=re.MULTILINE)
    assert re.search(r"^EXPOSE 5000$", text, flags=re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\\\n.*/health", text, flags=re.MULTILINE)
    assert 'CMD ["runyard", "server", "--host", "0.0.0.0"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", "benchmarks"} <= set(ignored)
    assert "runyard" not in ignored
    assert "pyproject.toml" not in ignored


def test_compose_services_healthchecks_and_order() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "minio", "create-bucket", "migrate", "runyard"}
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("postgres", "minio", "runyard"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert any("/health" in part for part in services["runyard"]["healthcheck"]["test"])
    # The bucket and the schema exist before the server starts.
    assert services["create-bucket"]["image"].startswith("minio/mc")
    assert "mc mb --ignore-existing local/runyard" in " ".join(services["create-bucket"]["command"])
    assert "runyard db upgrade" in " ".join(services["migrate"]["command"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["runyard"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "create-bucket": {"condition": "service_completed_successfully"},
    }
    # Named volumes, declared and mounted.
    assert set(compose["volumes"]) == {"postgres-data", "minio-data"}
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "minio-data:/data" in services["minio"]["volumes"]


def test_compose_environment_names_exist() -> None:
    services = _compose()["services"]
    env = services["runyard"]["environment"]
    _check_env_names(list(env))
    _check_env_names(list(services["migrate"]["environment"]))
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://runyard:")
    assert env["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/runyard")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://runyard/artifacts"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    # The server and MinIO agree on the credentials.
    minio = services["minio"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]


def test_kubernetes_manifests() -> None:
    docs = _k8s_documents()
    deployment = _by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 5000
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
        assert container[probe]["httpGet"]["port"] == container["ports"][0]["name"]
    (migrate,) = pod["spec"]["initContainers"]
    assert "runyard db upgrade" in " ".join(migrate["command"])

    secret = _by_kind(docs, "Secret")
    _check_env_names(list(secret["stringData"]))
    secret_refs = [ref["secretRef"]["name"] for ref in container["envFrom"]]
    assert secret_refs == [secret["metadata"]["name"]]
    _check_env_names([item["name"] for item in container["env"]])

    service = _by_kind(docs, "Service")
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    hpa = _by_kind(docs, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

    cronjob = _by_kind(docs, "CronJob")
    job = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (gc,) = job["containers"]
    assert gc["args"][:2] == ["runyard", "gc"]
    _check_env_names([item["name"] for item in gc["env"]])


def _options(path: list[str]) -> set[str]:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"runyard {' '.join(path)}"
        command = found
    return {
        opt
        for param in command.params
        for opt in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    }


def test_documented_commands_exist() -> None:
    assert {"--workers", "--read-replica-backend-store-uri", "--static-prefix",
            "--allowed-hosts", "--artifacts-destination", "--no-serve-artifacts",
            "--default-artifact-root"} <= _options(["server"])  # fmt: skip
    assert {"--older-than", "--dry-run", "--artifacts-destination"} <= _options(["gc"])
    assert "--write-check" in _options(["doctor"])
    _options(["db", "upgrade"])
    _options(["db", "current"])
    # What gunicorn and uvicorn load (in a fresh process, as they do): the ASGI app the
    # environment configures, not the runyard.server.app module (which shadows the attribute
    # once imported).
    probe = "import inspect, runyard.server as s; print(callable(s.app), inspect.ismodule(s.app))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.split() == ["True", "False"], done.stderr
