"""Server settings: built once (by the CLI or from the environment) and passed to create_app."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from runyard.config import ENV

__all__ = ["ServerSettings", "local_or_uri"]

DEFAULT_BACKEND = "sqlite:///runyard.db"
PROXY_ROOT = "mlflow-artifacts:"


def local_or_uri(destination: str) -> str:
    """An artifact destination as given when it is a URI (``s3://bucket/prefix``), else the
    absolute form of a local path (workers may run in another directory)."""
    if "://" in destination or destination.startswith("file:"):
        return destination
    return os.path.abspath(destination)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


@dataclass(frozen=True)
class ServerSettings:
    """What ``runyard server`` was asked to do (MLflow's option names)."""

    backend_store_uri: str = DEFAULT_BACKEND
    registry_store_uri: str | None = None
    #: A read-only replica of the backend database: searches and histories read it.
    read_replica_backend_store_uri: str | None = None
    default_artifact_root: str | None = None
    serve_artifacts: bool = True
    artifacts_destination: str = field(default_factory=lambda: os.path.abspath("runyard-artifacts"))
    artifacts_only: bool = False
    static_prefix: str = ""
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    allowed_hosts: tuple[str, ...] = ()
    cors_allowed_origins: tuple[str, ...] = ()
    #: ``basic-auth`` turns on users, permissions and the audit log (MLflow's --app-name).
    app_name: str | None = None
    #: Largest proxied artifact upload in bytes (0: no limit).
    max_upload_size: int = 0
    #: Seconds a request body may stall before the request is answered 408 (0: no limit).
    body_timeout: float = 60.0
    #: Connections or requests per worker beyond which uvicorn answers 503 (0: no limit).
    limit_concurrency: int = 1000

    @property
    def artifact_root(self) -> str:
        """The root new experiments get: explicit, else the proxy, else a local folder."""
        if self.default_artifact_root:
            return self.default_artifact_root
        if self.serve_artifacts:
            return PROXY_ROOT
        return os.path.abspath("runyard-artifacts")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Settings from ``RUNYARD_*``/``MLFLOW_*`` variables (how ``runyard.server:app`` runs
        under gunicorn or uvicorn)."""
        destination = ENV.ARTIFACTS_DESTINATION.get(environ)
        prefix = (ENV.STATIC_PREFIX.get(environ) or "").rstrip("/")
        return cls(
            backend_store_uri=ENV.BACKEND_STORE_URI.get(environ) or DEFAULT_BACKEND,
            registry_store_uri=ENV.REGISTRY_STORE_URI.get(environ),
            read_replica_backend_store_uri=ENV.READ_REPLICA_BACKEND_STORE_URI.get(environ),
            default_artifact_root=ENV.ARTIFACT_ROOT.get(environ),
            serve_artifacts=ENV.SERVE_ARTIFACTS.get(environ),
            artifacts_destination=local_or_uri(destination or "runyard-artifacts"),
            artifacts_only=ENV.ARTIFACTS_ONLY.get(environ),
            static_prefix=prefix,
            host=ENV.HOST.get(environ),
            port=ENV.PORT.get(environ),
            workers=ENV.WORKERS.get(environ),
            allowed_hosts=_split(ENV.SERVER_ALLOWED_HOSTS.get(environ)),
            cors_allowed_origins=_split(ENV.SERVER_CORS_ALLOWED_ORIGINS.get(environ)),
            app_name=ENV.APP_NAME.get(environ),
            max_upload_size=ENV.SERVER_MAX_UPLOAD_SIZE.get(environ),
            body_timeout=ENV.SERVER_BODY_TIMEOUT.get(environ),
            limit_concurrency=ENV.SERVER_LIMIT_CONCURRENCY.get(environ),
        )

    def to_env(self) -> dict[str, str]:
        """The same settings as ``RUNYARD_*`` variables, for worker processes."""
        env = {
            "RUNYARD_BACKEND_STORE_URI": self.backend_store_uri,
            "RUNYARD_SERVE_ARTIFACTS": str(self.serve_artifacts).lower(),
            "RUNYARD_ARTIFACTS_DESTINATION": self.artifacts_destination,
            "RUNYARD_ARTIFACTS_ONLY": str(self.artifacts_only).lower(),
            "RUNYARD_STATIC_PREFIX": self.static_prefix,
            "RUNYARD_HOST": self.host,
            "RUNYARD_PORT": str(self.port),
            "RUNYARD_WORKERS": str(self.workers),
            "RUNYARD_SERVER_ALLOWED_HOSTS": ",".join(self.allowed_hosts),
            "RUNYARD_SERVER_CORS_ALLOWED_ORIGINS": ",".join(self.cors_allowed_origins),
            "RUNYARD_SERVER_MAX_UPLOAD_SIZE": str(self.max_upload_size),
            "RUNYARD_SERVER_BODY_TIMEOUT": str(self.body_timeout),
            "RUNYARD_SERVER_LIMIT_CONCURRENCY": str(self.limit_concurrency),
        }
        if self.app_name:
            env["RUNYARD_APP_NAME"] = self.app_name
        if self.registry_store_uri:
            env["RUNYARD_REGISTRY_STORE_URI"] = self.registry_store_uri
        if self.read_replica_backend_store_uri:
            env["RUNYARD_READ_REPLICA_BACKEND_STORE_URI"] = self.read_replica_backend_store_uri
        if self.default_artifact_root:
            env["RUNYARD_DEFAULT_ARTIFACT_ROOT"] = self.default_artifact_root
        return env
