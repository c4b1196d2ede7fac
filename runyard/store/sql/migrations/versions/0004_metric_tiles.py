"""Metric tiles: step-range summaries of long series, so charts downsample without points.

Existing long series are tiled on their next write (``metric_summaries.tiled`` starts false);
until then they downsample from their points as before.

Revision ID: 0004_metric_tiles
Revises: 0003_auth
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_metric_tiles"
down_revision = "0003_auth"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)
SeriesId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.add_column(
        "metric_summaries",
        sa.Column("tiled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "metric_tiles",
        sa.Column("series_id", SeriesId, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("tile", sa.BigInteger, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("first_step", sa.BigInteger, nullable=False),
        sa.Column("first_timestamp", sa.BigInteger, nullable=False),
        sa.Column("first_value", Double, nullable=False),
        sa.Column("first_is_nan", sa.Boolean, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("last_timestamp", sa.BigInteger, nullable=False),
        sa.Column("last_value", Double, nullable=False),
        sa.Column("last_is_nan", sa.Boolean, nullable=False),
        sa.Column("min_value", Double),
        sa.Column("min_step", sa.BigInteger),
        sa.Column("min_timestamp", sa.BigInteger),
        sa.Column("max_value", Double),
        sa.Column("max_step", sa.BigInteger),
        sa.Column("max_timestamp", sa.BigInteger),
        sa.Column("nan_step", sa.BigInteger),
        sa.Column("nan_timestamp", sa.BigInteger),
        sa.Column("min_time", sa.BigInteger, nullable=False),
        sa.Column("max_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "level", "tile", name="pk_metric_tiles"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("metric_tiles")
    with op.batch_alter_table("metric_summaries") as batch:
        batch.drop_column("tiled")
