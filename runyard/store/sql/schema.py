"""The tracking schema as SQLAlchemy Core tables (the Alembic migrations create the same).

Design points (see ARCHITECTURE.md "Metrics storage"):

* ``metric_summaries`` holds one row per ``(run, key)`` — a *series* with an integer
  ``series_id`` — with the latest point (greatest ``(step, timestamp, value)``), min, max and
  point count. Listing and searching runs only ever read this table.
* ``metric_points`` holds every logged point keyed by ``(series_id, timestamp, step, value,
  is_nan)``, MLflow's history order. On SQLite the table is ``WITHOUT ROWID``, so a series is
  stored clustered and read in order with one range scan and no sort; the small integer key
  makes inserts ~40% faster than (run_uuid, key) strings would. Exact duplicate points collapse
  on the primary key, as in MLflow. Points have no foreign key (it would cost a lookup per
  inserted point); they are removed with their series.
* NaN is stored as ``value = 0, is_nan = true`` (portable to every database); ±Inf as ±max double.
* Types are portable: the same tables work on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "SCHEMA_REVISION",
    "dataset_inputs",
    "datasets",
    "experiment_tags",
    "experiments",
    "input_tags",
    "metadata",
    "metric_points",
    "metric_summaries",
    "params",
    "run_tags",
    "runs",
]

#: Alembic head revision this code expects; a test checks it matches the migrations directory.
SCHEMA_REVISION = "0001_initial"

metadata = MetaData()
Double = Float(precision=53)
# 64-bit on PostgreSQL; on SQLite an INTEGER primary key is the rowid (autoincrementing).
SeriesId = BigInteger().with_variant(Integer, "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("artifact_location", String(2048)),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", BigInteger),
    Column("last_update_time", BigInteger),
    UniqueConstraint("name", name="uq_experiments_name"),
    CheckConstraint("lifecycle_stage IN ('active', 'deleted')", name="ck_experiments_stage"),
    Index("ix_experiments_creation_time", "creation_time"),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250)),
    Column("user_id", String(256)),
    Column("status", String(9), nullable=False),
    Column("start_time", BigInteger),
    Column("end_time", BigInteger),
    Column("lifecycle_stage", String(20), nullable=False),
    Column("artifact_uri", String(2048)),
    Column("deleted_time", BigInteger),
    CheckConstraint(
        "status IN ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING', 'KILLED')",
        name="ck_runs_status",
    ),
    CheckConstraint("lifecycle_stage IN ('active', 'deleted')", name="ck_runs_stage"),
    # The default search order is start_time DESC, run_uuid ASC within experiments.
    Index("ix_runs_experiment_start", "experiment_id", "start_time", "run_uuid"),
)

params = Table(
    "params",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_uuid", "key", name="pk_params"),
    Index("ix_params_key", "key"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_uuid", "key", name="pk_run_tags"),
    Index("ix_run_tags_key", "key"),
)

metric_summaries = Table(
    "metric_summaries",
    metadata,
    Column("series_id", SeriesId, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Double, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("min_value", Double),
    Column("max_value", Double),
    Column("point_count", BigInteger, nullable=False),
    UniqueConstraint("run_uuid", "key", name="uq_metric_summaries_run_key"),
    # Filters and sorts on a metric across runs (metrics.m1 > 0.5) use this index.
    Index("ix_metric_summaries_key_nan_value", "key", "is_nan", "value"),
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("series_id", SeriesId, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Double, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    PrimaryKeyConstraint(
        "series_id", "timestamp", "step", "value", "is_nan", name="pk_metric_points"
    ),
    sqlite_with_rowid=False,
)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_uuid", String(36), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("digest", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text),
    Column("profile", Text),
    UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_identity"),
)

dataset_inputs = Table(
    "dataset_inputs",
    metadata,
    Column("input_uuid", String(36), primary_key=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column(
        "dataset_uuid",
        String(36),
        ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    UniqueConstraint("run_uuid", "dataset_uuid", name="uq_dataset_inputs_run_dataset"),
)

input_tags = Table(
    "input_tags",
    metadata,
    Column(
        "input_uuid",
        String(36),
        ForeignKey("dataset_inputs.input_uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),
    Column("value", String(500), nullable=False),
    PrimaryKeyConstraint("input_uuid", "name", name="pk_input_tags"),
)
