"""Users, permission grants, tokens, sessions, the audit log and the server secret.

Revision ID: 0003_auth
Revises: 0002_models
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_auth"
down_revision = "0002_models"
branch_labels = None
depends_on = None

AuditId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _user_fk() -> sa.ForeignKey:
    return sa.ForeignKey("auth_users.user_id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("username", name="uq_auth_users_username"),
    )
    op.create_table(
        "auth_permissions",
        sa.Column("user_id", sa.Integer, _user_fk(), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(500), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint(
            "user_id", "resource_type", "resource_id", name="pk_auth_permissions"
        ),
    )
    op.create_index(
        "ix_auth_permissions_resource", "auth_permissions", ["resource_type", "resource_id"]
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, _user_fk(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("expiration_time", sa.BigInteger, nullable=False),
        sa.Column("last_used_time", sa.BigInteger),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_auth_tokens_hash"),
    )
    op.create_index("ix_auth_tokens_user", "auth_tokens", ["user_id"])
    op.create_table(
        "auth_sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, _user_fk(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("expiration_time", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_auth_sessions_user", "auth_sessions", ["user_id"])
    op.create_table(
        "auth_audit",
        sa.Column("audit_id", AuditId, primary_key=True, autoincrement=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("username", sa.String(256)),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("endpoint", sa.String(256), nullable=False),
        sa.Column("resource_type", sa.String(32)),
        sa.Column("resource_id", sa.String(500)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("client_ip", sa.String(64)),
    )
    op.create_index("ix_auth_audit_timestamp", "auth_audit", ["timestamp"])
    op.create_index("ix_auth_audit_user", "auth_audit", ["username", "timestamp"])
    op.create_table(
        "auth_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "auth_settings",
        "auth_audit",
        "auth_sessions",
        "auth_tokens",
        "auth_permissions",
        "auth_users",
    ):
        op.drop_table(name)
