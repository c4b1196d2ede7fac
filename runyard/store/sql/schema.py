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
* ``metric_tiles`` (revision ``0004_metric_tiles``) summarises long series for charts. Once a
  series holds 8,192 points (``metric_summaries.tiled``) it has a pyramid of step tiles:
  ``level`` is log2 of the tile width in steps (6, 8, 10, … up to the widest not wider than the
  series' step span) and ``tile = step >> level``; level 64 is the root, one tile (0) for the
  whole series. A tile keeps its point count, first and last point by ``(step, timestamp)``,
  lowest and highest finite point, one NaN point and its time bounds (to find its points by a
  primary-key range scan). Writes merge each batch into the tiles in the same transaction;
  downsampling a series of any length reads at most a few thousand tiles instead of its points
  (:mod:`runyard.store.sql.metric_tiles`). On SQLite the table is ``WITHOUT ROWID`` too.
* Types are portable: the same tables work on SQLite and PostgreSQL.
* On PostgreSQL (revision ``0005_key_value_statistics``) ``params``, ``run_tags`` and
  ``metric_summaries`` carry extended statistics on ``(key, value)``, so the planner knows which
  values go with which keys when it estimates a search filter.

Models (revision ``0002_models``):

* ``logged_models`` (MLflow 3 LoggedModels, ids ``m-<32 hex>``) with their params, tags and
  metrics; ``run_models`` links runs to the models they produced (outputs) or used (inputs).
* The registry keys registered models by an integer ``model_key`` so a rename touches one row;
  versions, tags and aliases hang off it with cascading foreign keys (deleting a version drops
  its aliases). ``registered_models.last_version`` hands out version numbers, so a number is
  never reused after a delete.
* ``registry_events`` is append-only: every version creation, stage transition, alias move and
  promotion, with who, when, from and to, and the evidence of a gated promotion.

Auth (revision ``0003_auth``, used when the server runs with ``--app-name basic-auth``):

* ``auth_users`` with Argon2id password hashes; ``auth_permissions`` one grant per (user,
  resource type, resource id); ``auth_tokens`` and ``auth_sessions`` keep only the SHA-256 of
  their secrets; ``auth_settings`` holds the generated server secret shared by all workers.
* ``auth_audit`` is append-only: every write request, who made it, when, on which resource, and
  the HTTP status it got.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = [
    "SCHEMA_REVISION",
    "auth_audit",
    "auth_permissions",
    "auth_sessions",
    "auth_settings",
    "auth_tokens",
    "auth_users",
    "logged_model_metrics",
    "logged_model_params",
    "logged_model_tags",
    "logged_models",
    "model_version_tags",
    "model_versions",
    "registered_model_aliases",
    "registered_model_tags",
    "registered_models",
    "registry_events",
    "run_models",
    "dataset_inputs",
    "datasets",
    "experiment_tags",
    "experiments",
    "input_tags",
    "metadata",
    "metric_points",
    "metric_summaries",
    "metric_tiles",
    "params",
    "run_tags",
    "runs",
]

#: Alembic head revision this code expects; a test checks it matches the migrations directory.
SCHEMA_REVISION = "0006_runs_newest_first"

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
)
# The default search order, start_time DESC then run_uuid ASC within an experiment, is this
# index's own order (revision 0006_runs_newest_first): a page is read off it and the reading
# stops at the page's end (SQLite sorted the runs of each start_time itself before).
Index(
    "ix_runs_experiment_start",
    runs.c.experiment_id,
    runs.c.start_time.desc(),
    runs.c.run_uuid,
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
    # True once the series has metric_tiles (from 0004_metric_tiles; long series only).
    Column("tiled", Boolean, nullable=False, server_default=false()),
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

metric_tiles = Table(
    "metric_tiles",
    metadata,
    Column("series_id", SeriesId, nullable=False),
    # log2 of the tile width in steps; the tile holds the steps with ``step >> level == tile``.
    Column("level", Integer, nullable=False),
    Column("tile", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
    # The first and the last point by (step, timestamp).
    Column("first_step", BigInteger, nullable=False),
    Column("first_timestamp", BigInteger, nullable=False),
    Column("first_value", Double, nullable=False),
    Column("first_is_nan", Boolean, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("last_timestamp", BigInteger, nullable=False),
    Column("last_value", Double, nullable=False),
    Column("last_is_nan", Boolean, nullable=False),
    # The lowest and the highest finite point (NULL when every point is NaN).
    Column("min_value", Double),
    Column("min_step", BigInteger),
    Column("min_timestamp", BigInteger),
    Column("max_value", Double),
    Column("max_step", BigInteger),
    Column("max_timestamp", BigInteger),
    # One NaN point, if any.
    Column("nan_step", BigInteger),
    Column("nan_timestamp", BigInteger),
    # The earliest and latest timestamp of the tile's points.
    Column("min_time", BigInteger, nullable=False),
    Column("max_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("series_id", "level", "tile", name="pk_metric_tiles"),
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

# -- logged models (MLflow 3) -------------------------------------------------------------------

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("artifact_location", String(2048), nullable=False),
    Column("creation_timestamp_ms", BigInteger, nullable=False),
    Column("last_updated_timestamp_ms", BigInteger, nullable=False),
    # LoggedModelStatus enum number: 1 PENDING, 2 READY, 3 UPLOAD_FAILED.
    Column("status", Integer, nullable=False),
    Column("status_message", String(1000)),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("model_type", String(500)),
    Column("source_run_id", String(32)),
    CheckConstraint("lifecycle_stage IN ('active', 'deleted')", name="ck_logged_models_stage"),
    Index("ix_logged_models_experiment_created", "experiment_id", "creation_timestamp_ms"),
    Index("ix_logged_models_source_run", "source_run_id"),
)


def _logged_model_fk() -> ForeignKey:
    return ForeignKey("logged_models.model_id", ondelete="CASCADE")


logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("model_id", "key", name="pk_logged_model_params"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("model_id", "key", name="pk_logged_model_tags"),
)

logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), nullable=False),
    Column("key", String(500), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("value", Double, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("dataset_name", String(500)),
    Column("dataset_digest", String(36)),
    PrimaryKeyConstraint(
        "model_id", "key", "timestamp", "step", "run_id", name="pk_logged_model_metrics"
    ),
)

run_models = Table(
    "run_models",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("model_id", String(64), _logged_model_fk(), nullable=False),
    # "output": the run logged the model; "input": the run used it.
    Column("direction", String(6), nullable=False),
    Column("step", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_uuid", "direction", "model_id", name="pk_run_models"),
    CheckConstraint("direction IN ('input', 'output')", name="ck_run_models_direction"),
    Index("ix_run_models_model", "model_id"),
)

# -- model registry -----------------------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("model_key", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Column("user_id", String(256)),
    Column("last_version", Integer, nullable=False),
    UniqueConstraint("name", name="uq_registered_models_name"),
    Index("ix_registered_models_updated", "last_updated_time"),
)


def _registered_model_fk() -> ForeignKey:
    return ForeignKey("registered_models.model_key", ondelete="CASCADE")


registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("model_key", Integer, _registered_model_fk(), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("model_key", "key", name="pk_registered_model_tags"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_key", Integer, _registered_model_fk(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Column("user_id", String(256)),
    Column("current_stage", String(20), nullable=False),
    Column("source", String(2048)),
    Column("run_id", String(32)),
    Column("run_link", String(500)),
    Column("status", String(20), nullable=False),
    Column("status_message", String(500)),
    Column("storage_location", String(2048)),
    Column("model_id", String(64)),
    PrimaryKeyConstraint("model_key", "version", name="pk_model_versions"),
    Index("ix_model_versions_run", "run_id"),
    Index("ix_model_versions_updated", "last_updated_time"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_key", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("model_key", "version", "key", name="pk_model_version_tags"),
    ForeignKeyConstraint(
        ["model_key", "version"],
        ["model_versions.model_key", "model_versions.version"],
        ondelete="CASCADE",
        name="fk_model_version_tags_version",
    ),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("model_key", Integer, nullable=False),
    Column("alias", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("model_key", "alias", name="pk_registered_model_aliases"),
    ForeignKeyConstraint(
        ["model_key", "version"],
        ["model_versions.model_key", "model_versions.version"],
        ondelete="CASCADE",
        name="fk_registered_model_aliases_version",
    ),
)

registry_events = Table(
    "registry_events",
    metadata,
    Column("event_id", SeriesId, primary_key=True, autoincrement=True),
    Column("model_key", Integer, _registered_model_fk(), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("user_id", String(256)),
    # create_version, transition_stage, set_alias, delete_alias, delete_version, promote
    Column("action", String(32), nullable=False),
    Column("version", Integer),
    Column("from_stage", String(20)),
    Column("to_stage", String(20)),
    Column("alias", String(256)),
    Column("previous_version", Integer),
    # JSON: the conditions of a gated promotion and the values they were checked against.
    Column("evidence", Text),
    Index("ix_registry_events_model", "model_key", "event_id"),
)


# -- auth (0003_auth) ---------------------------------------------------------------------------


def _user_fk() -> ForeignKey:
    return ForeignKey("auth_users.user_id", ondelete="CASCADE")


auth_users = Table(
    "auth_users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(256), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    UniqueConstraint("username", name="uq_auth_users_username"),
)

auth_permissions = Table(
    "auth_permissions",
    metadata,
    Column("user_id", Integer, _user_fk(), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", String(500), nullable=False),
    Column("permission", String(32), nullable=False),
    PrimaryKeyConstraint("user_id", "resource_type", "resource_id", name="pk_auth_permissions"),
    Index("ix_auth_permissions_resource", "resource_type", "resource_id"),
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("token_id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, _user_fk(), nullable=False),
    Column("name", String(256), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("expiration_time", BigInteger, nullable=False),
    Column("last_used_time", BigInteger),
    Column("revoked", Boolean, nullable=False),
    UniqueConstraint("token_hash", name="uq_auth_tokens_hash"),
    Index("ix_auth_tokens_user", "user_id"),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", Integer, _user_fk(), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("expiration_time", BigInteger, nullable=False),
    Index("ix_auth_sessions_user", "user_id"),
)

auth_audit = Table(
    "auth_audit",
    metadata,
    Column("audit_id", SeriesId, primary_key=True, autoincrement=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("username", String(256)),
    Column("method", String(10), nullable=False),
    Column("path", String(2048), nullable=False),
    Column("endpoint", String(256), nullable=False),
    Column("resource_type", String(32)),
    Column("resource_id", String(500)),
    Column("status", Integer, nullable=False),
    Column("error_code", String(64)),
    Column("client_ip", String(64)),
    Index("ix_auth_audit_timestamp", "timestamp"),
    Index("ix_auth_audit_user", "username", "timestamp"),
)

auth_settings = Table(
    "auth_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
