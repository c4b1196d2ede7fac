"""SQL tracking store (SQLAlchemy Core + Alembic)."""
