"""``runyard doctor``: print the configuration a server would see here and check it works.

Settings come from the same places as ``runyard server`` (options over ``RUNYARD_*``/``MLFLOW_*``
variables over defaults). Checks: the tracking (and registry) database answers and its schema is
at this runyard's revision, and every artifact store in use can be listed (and, with
``--write-check``, written and cleaned up). Nothing is changed otherwise: an empty database is not
migrated and a missing SQLite file is not created. Exit status 1 when a check fails.
"""

from __future__ import annotations

import os
import platform
import re
import tempfile
import uuid
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from runyard.cli.db import schema_status
from runyard.cli.output import echo_json, echo_table, one_line, output_option
from runyard.errors import RunyardError
from runyard.server.settings import PROXY_ROOT, ServerSettings
from runyard.store.artifact import get_artifact_repository
from runyard.store.sql.engine import current_revision, make_engine
from runyard.version import MLFLOW_COMPATIBLE_VERSION, __version__

__all__ = ["Check", "check_artifacts", "check_database", "doctor", "mask_secrets"]

_ENV_PREFIXES = ("RUNYARD_", "MLFLOW_", "AWS_")
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH")
_URI_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^/@\s]+@")
_DRIVERS = ("psycopg", "boto3")
#: libpq's connect timeout while probing (a firewalled host would otherwise hang for minutes).
_PG_CONNECT_TIMEOUT = "10"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: its name, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str


def mask_secrets(name: str, value: str) -> str:
    """``value`` fit to print: secrets (by variable name) hidden, passwords in URIs hidden."""
    if any(word in name.upper() for word in _SECRET_WORDS) and value:
        return "***"
    return _URI_PASSWORD.sub(r"\1***@", value)


def _driver_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _missing_sqlite_file(uri: str) -> str | None:
    try:
        url = make_url(uri)
    except ArgumentError:
        return None
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    path = Path(database).expanduser()
    return None if path.exists() else str(path.resolve())


def check_database(name: str, uri: str) -> Check:
    """Connect to ``uri`` and compare its schema revision with this runyard's."""
    missing = _missing_sqlite_file(uri)
    if missing is not None:
        return Check(name, True, f"{missing} does not exist yet; the server creates it")
    try:
        engine = make_engine(uri)
    except RunyardError as exc:
        return Check(name, False, one_line(exc.message))
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except DBAPIError as exc:
        reason = str(exc.orig).strip() if exc.orig else str(exc)
        return Check(name, False, f"cannot connect to {shown}: {one_line(reason)}")
    finally:
        engine.dispose()
    up_to_date, status = schema_status(revision)
    if up_to_date:
        return Check(name, True, f"reachable; schema {status}")
    if revision is None:
        return Check(name, True, "reachable; empty, the server creates the schema on first start")
    if engine.dialect.name == "sqlite" and "out of date" in status:
        return Check(name, True, f"reachable; schema {status}, upgraded when the server starts")
    hint = (
        f"; run: runyard db upgrade '{mask_secrets('uri', uri)}'" if "out of date" in status else ""
    )
    return Check(name, False, f"reachable; schema {status}{hint}")


def _probe_write(repo: Any) -> str:
    folder = f"runyard-doctor-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="runyard-doctor-") as tmp:
        probe = Path(tmp, "probe.txt")
        probe.write_text("written by runyard doctor; safe to delete\n")
        repo.log_artifact(str(probe), folder)
    try:
        listed = [info.path for info in repo.list_artifacts(folder)]
        if f"{folder}/probe.txt" not in listed:
            raise RunyardError(f"the probe file {folder}/probe.txt was written but not listed")
    finally:
        repo.delete_artifacts(folder)
    if repo.list_artifacts(folder):
        raise RunyardError(f"the probe folder {folder} could not be deleted")
    return f"wrote, listed and deleted {folder}/probe.txt"


def check_artifacts(name: str, root: str, write: bool) -> Check:
    """List ``root`` through its artifact repository; with ``write``, also write a probe."""
    try:
        repo = get_artifact_repository(root)
        entries = repo.list_artifacts()
        scheme = urlsplit(root).scheme
        if scheme in ("", "file") and not Path(_local_path(root)).exists():
            detail = f"{root} does not exist yet; created on the first upload"
        else:
            detail = f"reachable; {len(entries)} entries at the root"
        if write:
            detail += "; " + _probe_write(repo)
    except RunyardError as exc:
        return Check(name, False, f"{root}: {one_line(exc.message)}")
    except Exception as exc:  # noqa: BLE001  (any failure of the store is the answer here)
        reason = one_line(str(exc)) or type(exc).__name__
        return Check(name, False, f"{root}: {type(exc).__name__}: {reason}")
    return Check(name, True, detail)


def _local_path(root: str) -> str:
    return urlsplit(root).path if root.startswith("file:") else root


def _local_or_uri(value: str) -> str:
    return value if "://" in value or value.startswith("file:") else os.path.abspath(value)


def _settings(options: dict[str, Any]) -> ServerSettings:
    try:
        env = ServerSettings.from_env()
    except ValueError as exc:  # a malformed RUNYARD_*/MLFLOW_* variable
        raise click.ClickException(one_line(str(exc))) from None
    given = {key: value for key, value in options.items() if value is not None}
    if "artifacts_destination" in given:
        given["artifacts_destination"] = _local_or_uri(given["artifacts_destination"])
    return ServerSettings(**{**env.__dict__, **given})


def _artifact_roots(settings: ServerSettings) -> list[tuple[str, str]]:
    roots: list[tuple[str, str]] = []
    if settings.serve_artifacts:
        roots.append(("artifact store (proxied)", settings.artifacts_destination))
    root = settings.artifact_root
    if not root.startswith(PROXY_ROOT) and root not in [r for _, r in roots]:
        roots.append(("artifact store (default root)", root))
    return roots


def _configuration(settings: ServerSettings) -> dict[str, str]:
    registry = settings.registry_store_uri or settings.backend_store_uri
    config = {
        "runyard_version": __version__,
        "mlflow_protocol_version": MLFLOW_COMPATIBLE_VERSION,
        "python_version": f"{platform.python_version()} ({platform.python_implementation()})",
        "tracking_uri": mask_secrets("uri", settings.backend_store_uri),
        "registry_uri": mask_secrets("uri", registry),
        "default_artifact_root": settings.artifact_root,
        "serve_artifacts": "yes" if settings.serve_artifacts else "no",
    }
    if settings.serve_artifacts:
        config["artifacts_destination"] = settings.artifacts_destination
    return config


@click.command("doctor")
@click.option(
    "--backend-store-uri",
    help="Tracking database to check (default: as 'runyard server': MLFLOW_BACKEND_STORE_URI, "
    "else sqlite:///runyard.db).",
)
@click.option("--registry-store-uri", help="Registry database, when not the tracking one.")
@click.option(
    "--artifacts-destination",
    help="Where the server stores proxied artifacts (a path or s3://bucket/prefix).",
)
@click.option(
    "--default-artifact-root", help="Artifact root for new experiments, if not the proxy."
)
@click.option(
    "--serve-artifacts/--no-serve-artifacts",
    default=None,
    help="Whether the server proxies artifacts (default: on, as 'runyard server').",
)
@click.option(
    "--write-check",
    is_flag=True,
    help="Also write a small probe file to each artifact store, then delete it.",
)
@output_option
def doctor(
    backend_store_uri: str | None,
    registry_store_uri: str | None,
    artifacts_destination: str | None,
    default_artifact_root: str | None,
    serve_artifacts: bool | None,
    write_check: bool,
    output: str,
) -> None:
    """Show the configuration a server would use here and check the stores are reachable.

    Checks that the database answers and its schema is current (else prints the
    'runyard db upgrade' to run) and that the artifact store can be listed. Passwords and
    secret variables are masked. Exit status 1 when a check fails.

    \b
    Example:
        runyard doctor
        runyard doctor --backend-store-uri postgresql://runyard@db/runyard \\
            --artifacts-destination s3://bucket/artifacts --write-check
    """
    settings = _settings(
        {
            "backend_store_uri": backend_store_uri,
            "registry_store_uri": registry_store_uri,
            "artifacts_destination": artifacts_destination,
            "default_artifact_root": default_artifact_root,
            "serve_artifacts": serve_artifacts,
        }
    )
    os.environ.setdefault("PGCONNECT_TIMEOUT", _PG_CONNECT_TIMEOUT)
    environment = {
        name: mask_secrets(name, os.environ[name])
        for name in sorted(os.environ)
        if name.startswith(_ENV_PREFIXES)
    }
    drivers = {name: _driver_version(name) for name in _DRIVERS}
    checks = [check_database("tracking database", settings.backend_store_uri)]
    registry = settings.registry_store_uri
    if registry and registry != settings.backend_store_uri:
        checks.append(check_database("registry database", registry))
    checks.extend(
        check_artifacts(name, root, write_check) for name, root in _artifact_roots(settings)
    )
    config = _configuration(settings)
    ok = all(check.ok for check in checks)
    if output == "json":
        echo_json(
            {
                "ok": ok,
                "configuration": config,
                "environment": environment,
                "drivers": drivers,
                "checks": [asdict(check) for check in checks],
            }
        )
    else:
        rows = [(key.replace("_", " "), value) for key, value in config.items()]
        rows += [(f"driver {name}", version) for name, version in drivers.items()]
        rows += [(name, value) for name, value in environment.items()]
        echo_table(["setting", "value"], rows, no_wrap=["setting"])
        click.echo()
        echo_table(
            ["check", "result", "detail"],
            [(c.name, "ok" if c.ok else "FAIL", c.detail) for c in checks],
            no_wrap=["check", "result"],
        )
    if not ok:
        click.get_current_context().exit(1)
