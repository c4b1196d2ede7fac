"""Initial tracking schema: experiments, runs, params, tags, metric points and summaries, datasets.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_uuid", ondelete="CASCADE")


def _experiment_fk() -> sa.ForeignKey:
    return sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(2048)),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger),
        sa.Column("last_update_time", sa.BigInteger),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
        sa.CheckConstraint("lifecycle_stage IN ('active', 'deleted')", name="ck_experiments_stage"),
    )
    op.create_index("ix_experiments_creation_time", "experiments", ["creation_time"])
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, _experiment_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
    )
    op.create_table(
        "runs",
        sa.Column("run_uuid", sa.String(32), primary_key=True),
        sa.Column("experiment_id", sa.Integer, _experiment_fk(), nullable=False),
        sa.Column("name", sa.String(250)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("status", sa.String(9), nullable=False),
        sa.Column("start_time", sa.BigInteger),
        sa.Column("end_time", sa.BigInteger),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("artifact_uri", sa.String(2048)),
        sa.Column("deleted_time", sa.BigInteger),
        sa.CheckConstraint(
            "status IN ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING', 'KILLED')",
            name="ck_runs_status",
        ),
        sa.CheckConstraint("lifecycle_stage IN ('active', 'deleted')", name="ck_runs_stage"),
    )
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", "start_time", "run_uuid"])
    for name in ("params", "run_tags"):
        op.create_table(
            name,
            sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("run_uuid", "key", name=f"pk_{name}"),
        )
        op.create_index(f"ix_{name}_key", name, ["key"])
    series_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "metric_summaries",
        sa.Column("series_id", series_id, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", Double, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.Column("min_value", Double),
        sa.Column("max_value", Double),
        sa.Column("point_count", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("run_uuid", "key", name="uq_metric_summaries_run_key"),
    )
    op.create_index(
        "ix_metric_summaries_key_nan_value", "metric_summaries", ["key", "is_nan", "value"]
    )
    op.create_table(
        "metric_points",
        sa.Column("series_id", series_id, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("value", Double, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint(
            "series_id", "timestamp", "step", "value", "is_nan", name="pk_metric_points"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", sa.String(36), primary_key=True),
        sa.Column("experiment_id", sa.Integer, _experiment_fk(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("schema", sa.Text),
        sa.Column("profile", sa.Text),
        sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_identity"),
    )
    op.create_table(
        "dataset_inputs",
        sa.Column("input_uuid", sa.String(36), primary_key=True),
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column(
            "dataset_uuid",
            sa.String(36),
            sa.ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.UniqueConstraint("run_uuid", "dataset_uuid", name="uq_dataset_inputs_run_dataset"),
    )
    op.create_table(
        "input_tags",
        sa.Column(
            "input_uuid",
            sa.String(36),
            sa.ForeignKey("dataset_inputs.input_uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("input_uuid", "name", name="pk_input_tags"),
    )


def downgrade() -> None:
    for name in (
        "input_tags",
        "dataset_inputs",
        "datasets",
        "metric_summaries",
        "metric_points",
        "run_tags",
        "params",
        "runs",
        "experiment_tags",
        "experiments",
    ):
        op.drop_table(name)
