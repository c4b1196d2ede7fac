"""``runyard server`` / ``runyard ui``: the tracking server, with MLflow's options."""

from __future__ import annotations

import os
from typing import Any

import click

from runyard.server.settings import ServerSettings, local_or_uri

__all__ = ["server", "ui"]


def _settings(options: dict[str, Any]) -> ServerSettings:
    """Command-line options over RUNYARD_*/MLFLOW_* variables over defaults."""
    env = ServerSettings.from_env()
    given = {k: v for k, v in options.items() if v is not None}
    for key in ("allowed_hosts", "cors_allowed_origins"):
        if key in given:
            given[key] = tuple(h.strip() for h in given[key].split(",") if h.strip())
    if "artifacts_destination" in given:
        given["artifacts_destination"] = local_or_uri(given["artifacts_destination"])
    if "static_prefix" in given:
        given["static_prefix"] = given["static_prefix"].rstrip("/")
    return ServerSettings(**{**env.__dict__, **given})


def _options(func: Any) -> Any:
    options = [
        click.option(
            "--backend-store-uri",
            help="Where runs are stored: sqlite:///path.db or postgresql://user:pw@host/db. "
            "Default: sqlite:///runyard.db in the current directory.",
        ),
        click.option("--registry-store-uri", help="Model registry store (default: backend)."),
        click.option(
            "--read-replica-backend-store-uri",
            metavar="URI",
            help="A read-only replica of the backend database (e.g. a PostgreSQL hot standby). "
            "Searches and metric histories read it; writes and reads by id use "
            "--backend-store-uri. Default: none (everything uses the backend).",
        ),
        click.option(
            "--default-artifact-root",
            help="Artifact root for new experiments, e.g. s3://bucket/prefix or a shared path. "
            "Default: mlflow-artifacts:/ (proxied by this server).",
        ),
        click.option(
            "--serve-artifacts/--no-serve-artifacts",
            default=None,
            help="Proxy artifact uploads and downloads through this server (default: on).",
        ),
        click.option(
            "--artifacts-destination",
            help="Where proxied artifacts are stored. Default: ./runyard-artifacts.",
        ),
        click.option(
            "--artifacts-only",
            is_flag=True,
            default=None,
            help="Serve only the artifact proxy (tracking endpoints answer 503).",
        ),
        click.option("-h", "--host", help="Address to bind (default 127.0.0.1; 0.0.0.0 for all)."),
        click.option("-p", "--port", type=int, help="Port to bind (default 5000)."),
        click.option("-w", "--workers", type=int, help="Worker processes (default 1)."),
        click.option(
            "--app-name",
            type=click.Choice(["basic-auth"]),
            help="basic-auth: require sign-in (HTTP Basic, tokens, UI login), enforce "
            "per-experiment and per-model permissions and keep an audit log. The first start "
            "needs RUNYARD_AUTH_ADMIN_PASSWORD (see docs/auth.md).",
        ),
        click.option("--static-prefix", help="Serve everything under this path, e.g. /runyard."),
        click.option(
            "--allowed-hosts", help="Comma-separated Host headers to accept (default: any)."
        ),
        click.option(
            "--cors-allowed-origins",
            help="Comma-separated origins allowed to call the API from a browser (default: none).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _serve(options: dict[str, Any]) -> None:
    import uvicorn

    settings = _settings(options)
    # Open the store now: a bad URI or an outdated schema is a one-line error before binding.
    from runyard.server.app import create_app

    app = create_app(settings)
    base = f"http://{settings.host}:{settings.port}{settings.static_prefix}"
    click.echo(f"runyard server on {base}  (store: {settings.backend_store_uri}; Ctrl-C stops)")
    kwargs: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        # SIGTERM: stop accepting, let requests in progress finish for up to 10 s, then exit.
        "timeout_graceful_shutdown": 10,
        # Idle keep-alive connections close after 5 s; past the limit new connections get 503.
        "timeout_keep_alive": 5,
        "limit_concurrency": settings.limit_concurrency or None,
        "backlog": 2048,
    }
    if settings.workers > 1:
        # Workers import runyard.server:app, configured from the same settings as variables.
        os.environ.update(settings.to_env())
        uvicorn.run("runyard.server:app", workers=settings.workers, **kwargs)
    else:
        uvicorn.run(app, **kwargs)


@click.command("server")
@_options
def server(**options: Any) -> None:
    """Run the tracking server: MLflow's REST API, the artifact proxy and the web UI.

    Every MLflow client works against it unchanged (MLFLOW_TRACKING_URI=http://HOST:PORT).
    Options also come from RUNYARD_* / MLFLOW_* variables (e.g. MLFLOW_BACKEND_STORE_URI).

    \b
    Example:
        runyard server --backend-store-uri sqlite:///runyard.db --port 5000
        runyard server --host 0.0.0.0 --workers 2 --artifacts-destination /data/artifacts
    """
    _serve(options)


@click.command("ui")
@_options
def ui(**options: Any) -> None:
    """Run the tracking server for local use (same as 'runyard server').

    With no options it serves ./runyard.db, the store scripts in this directory wrote.

    \b
    Example:
        runyard ui
        runyard ui --port 5001
    """
    _serve(options)
