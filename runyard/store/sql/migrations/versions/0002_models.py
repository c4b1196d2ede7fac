"""Logged models, run ↔ model links, and the model registry with its append-only history.

Revision ID: 0002_models
Revises: 0001_initial
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_models"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)
EventId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _fk(target: str) -> sa.ForeignKey:
    return sa.ForeignKey(target, ondelete="CASCADE")


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_key", "version"],
        ["model_versions.model_key", "model_versions.version"],
        ondelete="CASCADE",
        name=f"fk_{table}_version",
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.Integer, _fk("experiments.experiment_id"), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(2048), nullable=False),
        sa.Column("creation_timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("last_updated_timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("status_message", sa.String(1000)),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("model_type", sa.String(500)),
        sa.Column("source_run_id", sa.String(32)),
        sa.CheckConstraint(
            "lifecycle_stage IN ('active', 'deleted')", name="ck_logged_models_stage"
        ),
    )
    op.create_index(
        "ix_logged_models_experiment_created",
        "logged_models",
        ["experiment_id", "creation_timestamp_ms"],
    )
    op.create_index("ix_logged_models_source_run", "logged_models", ["source_run_id"])
    for name in ("logged_model_params", "logged_model_tags"):
        op.create_table(
            name,
            sa.Column("model_id", sa.String(64), _fk("logged_models.model_id"), nullable=False),
            sa.Column("key", sa.String(255), nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("model_id", "key", name=f"pk_{name}"),
        )
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(64), _fk("logged_models.model_id"), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("value", Double, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.Column("dataset_name", sa.String(500)),
        sa.Column("dataset_digest", sa.String(36)),
        sa.PrimaryKeyConstraint(
            "model_id", "key", "timestamp", "step", "run_id", name="pk_logged_model_metrics"
        ),
    )
    op.create_table(
        "run_models",
        sa.Column("run_uuid", sa.String(32), _fk("runs.run_uuid"), nullable=False),
        sa.Column("model_id", sa.String(64), _fk("logged_models.model_id"), nullable=False),
        sa.Column("direction", sa.String(6), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "direction", "model_id", name="pk_run_models"),
        sa.CheckConstraint("direction IN ('input', 'output')", name="ck_run_models_direction"),
    )
    op.create_index("ix_run_models_model", "run_models", ["model_id"])

    op.create_table(
        "registered_models",
        sa.Column("model_key", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("user_id", sa.String(256)),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_index("ix_registered_models_updated", "registered_models", ["last_updated_time"])
    op.create_table(
        "registered_model_tags",
        sa.Column("model_key", sa.Integer, _fk("registered_models.model_key"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_key", "key", name="pk_registered_model_tags"),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_key", sa.Integer, _fk("registered_models.model_key"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("user_id", sa.String(256)),
        sa.Column("current_stage", sa.String(20), nullable=False),
        sa.Column("source", sa.String(2048)),
        sa.Column("run_id", sa.String(32)),
        sa.Column("run_link", sa.String(500)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_message", sa.String(500)),
        sa.Column("storage_location", sa.String(2048)),
        sa.Column("model_id", sa.String(64)),
        sa.PrimaryKeyConstraint("model_key", "version", name="pk_model_versions"),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_updated", "model_versions", ["last_updated_time"])
    op.create_table(
        "model_version_tags",
        sa.Column("model_key", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_key", "version", "key", name="pk_model_version_tags"),
        _version_fk("model_version_tags"),
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("model_key", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("model_key", "alias", name="pk_registered_model_aliases"),
        _version_fk("registered_model_aliases"),
    )
    op.create_table(
        "registry_events",
        sa.Column("event_id", EventId, primary_key=True, autoincrement=True),
        sa.Column("model_key", sa.Integer, _fk("registered_models.model_key"), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(256)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("from_stage", sa.String(20)),
        sa.Column("to_stage", sa.String(20)),
        sa.Column("alias", sa.String(256)),
        sa.Column("previous_version", sa.Integer),
        sa.Column("evidence", sa.Text),
    )
    op.create_index("ix_registry_events_model", "registry_events", ["model_key", "event_id"])


def downgrade() -> None:
    for name in (
        "registry_events",
        "registered_model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
        "run_models",
        "logged_model_metrics",
        "logged_model_tags",
        "logged_model_params",
        "logged_models",
    ):
        op.drop_table(name)
