"""The SQL tracking store: SQLite by default, PostgreSQL with the same code."""

from __future__ import annotations

import os

from sqlalchemy import Engine, select

from runyard.store.sql import schema as t
from runyard.store.sql.engine import make_engine, prepare_schema
from runyard.store.sql.experiments import ExperimentOps
from runyard.store.sql.gc import GcOps
from runyard.store.sql.history_downsample import HistoryDownsampleOps
from runyard.store.sql.logged_models import LoggedModelOps
from runyard.store.sql.logging_ops import LoggingOps
from runyard.store.sql.metric_summaries import MetricSummaryOps
from runyard.store.sql.registry import RegistryOps
from runyard.store.sql.run_import import RunImportOps
from runyard.store.sql.run_keys import RunKeyOps
from runyard.store.sql.runs import RunOps
from runyard.store.sql.statements import Statements

__all__ = ["SqlTrackingStore"]


class SqlTrackingStore(
    ExperimentOps,
    RunImportOps,
    RunOps,
    LoggingOps,
    LoggedModelOps,
    RegistryOps,
    RunKeyOps,
    HistoryDownsampleOps,
    MetricSummaryOps,
    GcOps,
):
    """A tracking store over any SQLAlchemy database URI.

    Args:
        db_uri: ``sqlite:///path.db``, ``postgresql://...``.
        default_artifact_root: where new experiments keep artifacts (``<root>/<experiment_id>``).
        auto_upgrade: apply pending migrations on open (the embedded default does; servers ask
            the operator to run ``runyard db upgrade``).
    """

    def __init__(
        self,
        db_uri: str,
        default_artifact_root: str,
        auto_upgrade: bool = True,
        busy_timeout: float = 30.0,
    ) -> None:
        self.db_uri = db_uri
        self._artifact_root = default_artifact_root
        self._engine: Engine = make_engine(db_uri, busy_timeout)
        self._sql = Statements(self._engine.dialect)
        self._series_cache = {}
        self._long_series = set()
        self._tile_states = {}
        try:
            prepare_schema(self._engine, auto_upgrade)
            self._ensure_default_experiment()
        except BaseException:
            self._engine.dispose()  # no pooled connection outlives a store that failed to open
            raise

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations and maintenance commands)."""
        return self._engine

    def experiment_id_of_run(self, run_id: str) -> str | None:
        """The experiment a run belongs to (deleted runs too), None when unknown."""
        with self._read() as conn:
            row = self._sql.run_state.run(conn, run_uuid=run_id).fetchone()
        return None if row is None else str(row[1])

    def experiment_id_of_logged_model(self, model_id: str) -> str | None:
        """The experiment a logged model belongs to, None when unknown."""
        with self._read() as conn:
            value = conn.execute(
                select(t.logged_models.c.experiment_id).where(
                    t.logged_models.c.model_id == model_id
                )
            ).scalar()
        return None if value is None else str(value)

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()


def default_artifact_root_for(cwd: str | None = None) -> str:
    """``<cwd>/runyard-artifacts``, the embedded default artifact root."""
    return os.path.join(os.path.abspath(cwd or os.getcwd()), "runyard-artifacts")


__all__ += ["default_artifact_root_for"]
