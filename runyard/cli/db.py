"""``runyard db``: the tracking database schema (MLflow's ``mlflow db upgrade``, and ``current``).

``upgrade`` applies the Alembic migrations a runyard release ships; it is idempotent and safe when
several processes run it at once (see :func:`runyard.store.sql.engine.upgrade`). ``current``
tells whether a database is empty, up to date, or needs ``runyard db upgrade``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from runyard.errors import RunyardError
from runyard.store.sql.engine import (
    MIGRATIONS_DIR,
    current_revision,
    describe_db_error,
    make_engine,
    upgrade,
)
from runyard.store.sql.schema import SCHEMA_REVISION

__all__ = ["commands", "schema_status"]

EMPTY = "empty database"


@click.group("db")
def commands() -> None:
    """Manage the schema of a tracking database (SQLite or PostgreSQL).

    A server on PostgreSQL refuses to start on an outdated schema; run 'runyard db upgrade'
    once per release, from one machine, after a backup.

    \b
    Example:
        runyard db current postgresql://runyard:pw@db/runyard
        runyard db upgrade postgresql://runyard:pw@db/runyard
    """


def _is_missing_sqlite_file(url: str) -> bool:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # make_engine reports the bad URI
    database = parsed.database or ""
    return (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not Path(database).expanduser().exists()
    )


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    except DBAPIError as exc:
        raise describe_db_error(engine, exc) from None
    finally:
        engine.dispose()


def _is_runyard_revision(revision: str) -> bool:
    return (MIGRATIONS_DIR / "versions" / f"{revision}.py").exists()


def schema_status(revision: str | None) -> tuple[bool, str]:
    """``(up_to_date, description)`` of a stored schema revision (None: an empty database)."""
    if revision is None:
        return False, f"{EMPTY}; 'runyard db upgrade' creates schema {SCHEMA_REVISION}"
    if revision == SCHEMA_REVISION:
        return True, f"{revision} (up to date)"
    if not _is_runyard_revision(revision):
        return False, f"{revision} (not a runyard schema; use a new database)"
    return False, f"{revision} (out of date: this runyard needs {SCHEMA_REVISION})"


@commands.command("upgrade")
@click.argument("url")
def upgrade_command(url: str) -> None:
    """Upgrade the schema of the database at URL to this runyard's revision.

    Creates the tables in an empty database. Safe to run again (nothing to do at the latest
    revision) and from several processes at once. Back up the database first.

    \b
    Example:
        runyard db upgrade sqlite:///runyard.db
        runyard db upgrade 'postgresql://runyard:pw@db.internal:5432/runyard'
    """
    with _engine(url) as engine:
        before = current_revision(engine)
        if before is not None and not _is_runyard_revision(before):
            shown = engine.url.render_as_string(hide_password=True)
            raise RunyardError(
                f"The database at {shown} was not created by runyard (schema revision "
                f"{before}); point runyard at a new database URI."
            )
        before = upgrade(engine)  # read again under the migration lock
        after = current_revision(engine)
    if before == after:
        click.echo(f"Schema already at {after}; nothing to do.")
    else:
        click.echo(f"Upgraded the schema from {before or EMPTY} to {after}.")


@commands.command("current")
@click.argument("url")
def current_command(url: str) -> None:
    """Print the schema revision of the database at URL and whether it is up to date.

    Changes nothing (a SQLite file that does not exist is reported empty, not created).

    \b
    Example:
        runyard db current sqlite:///runyard.db
    """
    if _is_missing_sqlite_file(url):
        revision = None
    else:
        with _engine(url) as engine:
            revision = current_revision(engine)
    up_to_date, description = schema_status(revision)
    click.echo(description)
    if not up_to_date and revision is not None and _is_runyard_revision(revision):
        click.echo(f"Run: runyard db upgrade '{url}'")
