"""Every environment variable runyard reads, declared once, and the client settings object.

Each variable is read as ``RUNYARD_<NAME>`` first and ``MLFLOW_<NAME>`` second, so an MLflow user's
environment keeps working unchanged. ``docs/environment.md`` is generated from this table (see
``python -m runyard.config``) and a test keeps the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["ENV", "EnvVar", "Settings", "env_table_markdown"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n", ""}


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


@dataclass(frozen=True)
class EnvVar(Generic[T]):
    """An environment variable: ``RUNYARD_<name>`` with ``MLFLOW_<name>`` as a fallback."""

    name: str
    default: T
    parse: Callable[[str], T]
    doc: str
    mlflow_fallback: bool = True

    @property
    def runyard_name(self) -> str:
        """The preferred spelling, ``RUNYARD_<NAME>``."""
        return f"RUNYARD_{self.name}"

    @property
    def mlflow_name(self) -> str:
        """MLflow's spelling, ``MLFLOW_<NAME>``, honoured when the RUNYARD_ one is unset."""
        return f"MLFLOW_{self.name}"

    def raw(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The text set in the environment, or None."""
        env = os.environ if environ is None else environ
        value = env.get(self.runyard_name)
        if value is None and self.mlflow_fallback:
            value = env.get(self.mlflow_name)
        return value

    def get(self, environ: Mapping[str, str] | None = None) -> T:
        """The parsed value, or the default when unset or empty."""
        raw = self.raw(environ)
        if raw is None or raw == "":
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{self.runyard_name}/{self.mlflow_name}: {exc}") from None

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        """True when either spelling is set to a non-empty value."""
        return bool(self.raw(environ))


def _str(raw: str) -> str:
    return raw


def _opt_str(raw: str) -> str | None:
    return raw


class ENV:
    """The registry of environment variables (see ``docs/environment.md``)."""

    TRACKING_URI: EnvVar[str | None] = EnvVar(
        "TRACKING_URI", None, _opt_str, "Tracking store URI (default: sqlite:///runyard.db)."
    )
    REGISTRY_URI: EnvVar[str | None] = EnvVar(
        "REGISTRY_URI", None, _opt_str, "Model registry store URI (default: the tracking URI)."
    )
    EXPERIMENT_NAME: EnvVar[str | None] = EnvVar(
        "EXPERIMENT_NAME", None, _opt_str, "Experiment used by the fluent API when none is set."
    )
    EXPERIMENT_ID: EnvVar[str | None] = EnvVar(
        "EXPERIMENT_ID", None, _opt_str, "Experiment id used by the fluent API when none is set."
    )
    RUN_ID: EnvVar[str | None] = EnvVar(
        "RUN_ID", None, _opt_str, "start_run() with no arguments resumes this run."
    )
    ASYNC_LOGGING: EnvVar[bool] = EnvVar(
        "ASYNC_LOGGING",
        True,
        _parse_bool,
        "Write logged values in the background in batches; false makes every call synchronous.",
        mlflow_fallback=False,
    )
    ASYNC_FLUSH_INTERVAL: EnvVar[float] = EnvVar(
        "ASYNC_FLUSH_INTERVAL",
        0.2,
        float,
        "Seconds between background writes of queued values.",
        mlflow_fallback=False,
    )
    TRUNCATE_LONG_VALUES: EnvVar[bool] = EnvVar(
        "TRUNCATE_LONG_VALUES",
        True,
        _parse_bool,
        "Truncate over-long param (6000) and tag (8000) values instead of raising.",
    )
    ARTIFACT_ROOT: EnvVar[str | None] = EnvVar(
        "DEFAULT_ARTIFACT_ROOT",
        None,
        _opt_str,
        "Artifact root for new experiments (default: ./runyard-artifacts beside the store).",
    )
    RUN_CONTEXT: EnvVar[str | None] = EnvVar(
        "RUN_CONTEXT", None, _opt_str, "JSON object of extra tags set on every new run."
    )
    SQLITE_BUSY_TIMEOUT: EnvVar[float] = EnvVar(
        "SQLITE_BUSY_TIMEOUT",
        30.0,
        float,
        "Seconds a SQLite writer waits for another process's lock.",
        mlflow_fallback=False,
    )

    # -- client durability: spool, end_run timeout, offline mode (docs/reliability.md) ---------
    SPOOL_DIR: EnvVar[str] = EnvVar(
        "SPOOL_DIR",
        "~/.runyard/spool",
        _str,
        "Where logged values wait on disk while the tracking server is unreachable "
        "(uploaded when it answers again, or by `runyard sync`).",
        mlflow_fallback=False,
    )
    SPOOL_MAX_BYTES: EnvVar[int] = EnvVar(
        "SPOOL_MAX_BYTES",
        1024**3,
        int,
        "Most bytes all spool files in the spool directory may take; past it values wait in "
        "memory.",
        mlflow_fallback=False,
    )
    SPOOL_AFTER: EnvVar[float] = EnvVar(
        "SPOOL_AFTER",
        10.0,
        float,
        "Seconds the tracking server may stay unreachable before queued values move to the spool.",
        mlflow_fallback=False,
    )
    END_RUN_TIMEOUT: EnvVar[float] = EnvVar(
        "END_RUN_TIMEOUT",
        30.0,
        float,
        "Seconds end_run waits for an unreachable server before it leaves the rest (and the "
        "run's end) in the spool for `runyard sync`.",
        mlflow_fallback=False,
    )
    OFFLINE: EnvVar[bool] = EnvVar(
        "OFFLINE",
        False,
        _parse_bool,
        "Log into a local store under RUNYARD_OFFLINE_DIR whatever the tracking URI; push the "
        "runs later with `runyard sync --to URL`.",
        mlflow_fallback=False,
    )
    OFFLINE_DIR: EnvVar[str] = EnvVar(
        "OFFLINE_DIR",
        "~/.runyard/offline",
        _str,
        "Offline mode: the directory of the local store (runyard.db) and its artifacts.",
        mlflow_fallback=False,
    )

    # -- REST client (http(s) tracking URIs) ---------------------------------------------------
    TRACKING_USERNAME: EnvVar[str | None] = EnvVar(
        "TRACKING_USERNAME", None, _opt_str, "HTTP Basic user name sent to the tracking server."
    )
    TRACKING_PASSWORD: EnvVar[str | None] = EnvVar(
        "TRACKING_PASSWORD", None, _opt_str, "HTTP Basic password sent to the tracking server."
    )
    TRACKING_TOKEN: EnvVar[str | None] = EnvVar(
        "TRACKING_TOKEN",
        None,
        _opt_str,
        "Bearer token sent to the tracking server (when no user name is set).",
    )
    TRACKING_INSECURE_TLS: EnvVar[bool] = EnvVar(
        "TRACKING_INSECURE_TLS", False, _parse_bool, "Skip TLS certificate verification."
    )
    TRACKING_SERVER_CERT_PATH: EnvVar[str | None] = EnvVar(
        "TRACKING_SERVER_CERT_PATH", None, _opt_str, "CA bundle to verify the server with."
    )
    HTTP_REQUEST_MAX_RETRIES: EnvVar[int] = EnvVar(
        "HTTP_REQUEST_MAX_RETRIES", 7, int, "Retries on connection errors, 429 and 5xx."
    )
    HTTP_REQUEST_BACKOFF_FACTOR: EnvVar[float] = EnvVar(
        "HTTP_REQUEST_BACKOFF_FACTOR", 2.0, float, "Exponential backoff factor between retries."
    )
    HTTP_REQUEST_TIMEOUT: EnvVar[float] = EnvVar(
        "HTTP_REQUEST_TIMEOUT", 120.0, float, "Seconds before one HTTP request times out."
    )

    # -- tracking server (runyard server / runyard ui) -----------------------------------------
    BACKEND_STORE_URI: EnvVar[str | None] = EnvVar(
        "BACKEND_STORE_URI", None, _opt_str, "Server: tracking store URI."
    )
    REGISTRY_STORE_URI: EnvVar[str | None] = EnvVar(
        "REGISTRY_STORE_URI", None, _opt_str, "Server: registry store URI (default: backend)."
    )
    READ_REPLICA_BACKEND_STORE_URI: EnvVar[str | None] = EnvVar(
        "READ_REPLICA_BACKEND_STORE_URI",
        None,
        _opt_str,
        "Server: read-only database replica for searches and metric histories (default: none).",
    )
    SERVE_ARTIFACTS: EnvVar[bool] = EnvVar(
        "SERVE_ARTIFACTS", True, _parse_bool, "Server: proxy artifacts (mlflow-artifacts:/)."
    )
    ARTIFACTS_DESTINATION: EnvVar[str | None] = EnvVar(
        "ARTIFACTS_DESTINATION",
        None,
        _opt_str,
        "Server: where proxied artifacts are stored (default ./runyard-artifacts).",
    )
    ARTIFACTS_ONLY: EnvVar[bool] = EnvVar(
        "ARTIFACTS_ONLY", False, _parse_bool, "Server: serve only the artifact proxy."
    )
    STATIC_PREFIX: EnvVar[str | None] = EnvVar(
        "STATIC_PREFIX", None, _opt_str, "Server: path prefix for every route (e.g. /runyard)."
    )
    HOST: EnvVar[str] = EnvVar("HOST", "127.0.0.1", _str, "Server: address to bind.")
    PORT: EnvVar[int] = EnvVar("PORT", 5000, int, "Server: port to bind.")
    WORKERS: EnvVar[int] = EnvVar("WORKERS", 1, int, "Server: worker processes.")
    SERVER_ALLOWED_HOSTS: EnvVar[str | None] = EnvVar(
        "SERVER_ALLOWED_HOSTS",
        None,
        _opt_str,
        "Server: comma-separated Host header values accepted (default: any).",
    )
    ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES: EnvVar[str | None] = EnvVar(
        "ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES",
        None,
        _opt_str,
        "Server: comma-separated schemes (ftp, http, ...) clients may use in artifact locations "
        "that name another host (default: none, to stop server-side request forgery).",
    )
    SERVER_CORS_ALLOWED_ORIGINS: EnvVar[str | None] = EnvVar(
        "SERVER_CORS_ALLOWED_ORIGINS",
        None,
        _opt_str,
        "Server: comma-separated origins allowed by CORS (default: none).",
    )
    SERVER_MAX_UPLOAD_SIZE: EnvVar[int] = EnvVar(
        "SERVER_MAX_UPLOAD_SIZE",
        0,
        int,
        "Server: largest artifact upload through the proxy, in bytes (413 beyond; 0: no limit). "
        "JSON endpoints have fixed limits (1 MB for log-batch, 16 MB otherwise).",
        mlflow_fallback=False,
    )
    SERVER_BODY_TIMEOUT: EnvVar[float] = EnvVar(
        "SERVER_BODY_TIMEOUT",
        60.0,
        float,
        "Server: seconds a client may pause while sending a request body before it is answered "
        "408 and disconnected (0: wait for ever).",
        mlflow_fallback=False,
    )
    SERVER_LIMIT_CONCURRENCY: EnvVar[int] = EnvVar(
        "SERVER_LIMIT_CONCURRENCY",
        1000,
        int,
        "Server: open connections (or requests in progress) per worker process beyond which new "
        "ones are answered 503, which clients retry (0: no limit).",
        mlflow_fallback=False,
    )

    # -- authentication (runyard server --app-name basic-auth) ----------------------------------
    APP_NAME: EnvVar[str | None] = EnvVar(
        "APP_NAME",
        None,
        _opt_str,
        "Server: 'basic-auth' turns on users, permissions and the audit log (--app-name).",
    )
    AUTH_CONFIG_PATH: EnvVar[str | None] = EnvVar(
        "AUTH_CONFIG_PATH",
        None,
        _opt_str,
        "Server: the auth ini file (MLflow's basic_auth.ini keys, section [mlflow]).",
    )
    AUTH_ADMIN_USERNAME: EnvVar[str | None] = EnvVar(
        "AUTH_ADMIN_USERNAME",
        None,
        _opt_str,
        "Server: the admin created on first start with auth on (default: admin).",
    )
    AUTH_ADMIN_PASSWORD: EnvVar[str | None] = EnvVar(
        "AUTH_ADMIN_PASSWORD",
        None,
        _opt_str,
        "Server: the first admin's password (required to start auth on an empty user table).",
    )
    AUTH_DEFAULT_PERMISSION: EnvVar[str | None] = EnvVar(
        "AUTH_DEFAULT_PERMISSION",
        None,
        _opt_str,
        "Server: permission on resources without a grant: READ (default), USE, EDIT, MANAGE, "
        "NO_PERMISSIONS.",
    )
    FLASK_SERVER_SECRET_KEY: EnvVar[str | None] = EnvVar(
        "FLASK_SERVER_SECRET_KEY",
        None,
        _opt_str,
        "Server: the key of the auth layer's credential-cache digests (default: one generated "
        "and kept in the auth database, shared by all workers and servers on it).",
    )

    # -- production stores: PostgreSQL pool, S3-compatible artifacts ------------------------------
    SQLALCHEMYSTORE_POOL_SIZE: EnvVar[int | None] = EnvVar(
        "SQLALCHEMYSTORE_POOL_SIZE",
        None,
        int,
        "PostgreSQL store: connections kept in each process's pool (SQLAlchemy default 5).",
    )
    SQLALCHEMYSTORE_MAX_OVERFLOW: EnvVar[int | None] = EnvVar(
        "SQLALCHEMYSTORE_MAX_OVERFLOW",
        None,
        int,
        "PostgreSQL store: connections opened beyond the pool under load (default 10).",
    )
    SQLALCHEMYSTORE_POOL_RECYCLE: EnvVar[int | None] = EnvVar(
        "SQLALCHEMYSTORE_POOL_RECYCLE",
        None,
        int,
        "PostgreSQL store: seconds after which a pooled connection is replaced (default never).",
    )
    S3_ENDPOINT_URL: EnvVar[str | None] = EnvVar(
        "S3_ENDPOINT_URL",
        None,
        _opt_str,
        "S3 artifacts: endpoint of an S3-compatible store (MinIO, Ceph...), e.g. "
        "http://minio:9000; AWS credentials come from the standard AWS_* variables.",
    )
    S3_IGNORE_TLS: EnvVar[bool] = EnvVar(
        "S3_IGNORE_TLS", False, _parse_bool, "S3 artifacts: skip TLS certificate verification."
    )
    S3_UPLOAD_EXTRA_ARGS: EnvVar[str | None] = EnvVar(
        "S3_UPLOAD_EXTRA_ARGS",
        None,
        _opt_str,
        'S3 artifacts: JSON of extra upload arguments, e.g. {"ServerSideEncryption": "aws:kms"}.',
    )
    MULTIPART_UPLOAD_CHUNK_SIZE: EnvVar[int] = EnvVar(
        "MULTIPART_UPLOAD_CHUNK_SIZE",
        100 * 1024 * 1024,
        int,
        "S3 artifacts: bytes per part of a multipart upload.",
    )
    MULTIPART_UPLOAD_MINIMUM_FILE_SIZE: EnvVar[int] = EnvVar(
        "MULTIPART_UPLOAD_MINIMUM_FILE_SIZE",
        500 * 1024 * 1024,
        int,
        "S3 artifacts: files at least this large are uploaded in parts.",
    )

    # -- scoring server (runyard models serve) -------------------------------------------------
    SCORING_SERVER_REQUEST_TIMEOUT: EnvVar[float] = EnvVar(
        "SCORING_SERVER_REQUEST_TIMEOUT",
        60.0,
        float,
        "Scoring server: seconds one /invocations request may take before it is answered 504.",
    )
    MODELS_WORKERS: EnvVar[int] = EnvVar(
        "MODELS_WORKERS", 1, int, "Scoring server: worker processes of `runyard models serve`."
    )
    SCORING_BATCH_MAX_ROWS: EnvVar[int] = EnvVar(
        "SCORING_BATCH_MAX_ROWS",
        1024,
        int,
        "Scoring server: most rows one model call may take when concurrent requests to a "
        "scikit-learn/XGBoost/LightGBM model are batched; 0 scores every request alone.",
        mlflow_fallback=False,
    )
    SCORING_MODEL_PATH: EnvVar[str | None] = EnvVar(
        "SCORING_MODEL_PATH",
        None,
        _opt_str,
        "Scoring server: the model directory each worker process loads (set by "
        "`runyard models serve --workers N` for its workers).",
        mlflow_fallback=False,
    )
    ENV_ROOT: EnvVar[str] = EnvVar(
        "ENV_ROOT",
        "~/.cache/runyard/envs",
        _str,
        "Serving and projects: where environments built by --env-manager virtualenv/uv/conda "
        "are cached.",
    )
    DEPLOYMENTS_DIR: EnvVar[str] = EnvVar(
        "DEPLOYMENTS_DIR",
        "~/.local/state/runyard/deployments",
        _str,
        "Deployments: state, model copies and logs of the `local` deployment target.",
        mlflow_fallback=False,
    )

    @classmethod
    def all(cls) -> list[EnvVar[object]]:
        """Every declared variable, in declaration order."""
        return [v for v in vars(cls).values() if isinstance(v, EnvVar)]


def default_tracking_uri() -> str:
    """``sqlite:///runyard.db`` in the working directory: zero set-up."""
    return "sqlite:///runyard.db"


@dataclass
class Settings:
    """Client-side settings, resolved once from the environment and passed around."""

    tracking_uri: str = field(default_factory=default_tracking_uri)
    async_logging: bool = True
    flush_interval: float = 0.2
    truncate_long_values: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``RUNYARD_*`` / ``MLFLOW_*`` variables."""
        return cls(
            tracking_uri=ENV.TRACKING_URI.get(environ) or default_tracking_uri(),
            async_logging=ENV.ASYNC_LOGGING.get(environ),
            flush_interval=ENV.ASYNC_FLUSH_INTERVAL.get(environ),
            truncate_long_values=ENV.TRUNCATE_LONG_VALUES.get(environ),
        )


def env_table_markdown() -> str:
    """The Markdown table of every variable, as in ``docs/environment.md``."""
    lines = [
        "| Variable | MLflow fallback | Default | Meaning |",
        "|---|---|---|---|",
    ]
    for var in ENV.all():
        fallback = f"`{var.mlflow_name}`" if var.mlflow_fallback else "—"
        default = "unset" if var.default is None else f"`{var.default}`"
        lines.append(f"| `{var.runyard_name}` | {fallback} | {default} | {var.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - documentation generator
    import sys

    sys.stdout.write(env_table_markdown())
