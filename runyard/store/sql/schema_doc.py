"""Render the tracking schema as Markdown (``docs/storage-schema.md``; a test keeps it current).

Run ``python -m runyard.store.sql.schema_doc > docs/storage-schema.md`` after a schema change.
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import Table, UniqueConstraint
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from runyard.store.sql import schema

__all__ = ["schema_markdown"]

_INTRO = """# Storage schema

runyard keeps tracking metadata in a SQL database (SQLite by default, PostgreSQL in production),
created and upgraded by Alembic migrations (`runyard/store/sql/migrations`). Current revision:
`{revision}`.

{design}
"""


def _part(expression: Any) -> str:
    """An index column as the docs name it: ``start_time`` or ``start_time DESC``."""
    if isinstance(expression, UnaryExpression) and expression.modifier is operators.desc_op:
        return f"{_part(expression.element)} DESC"
    return str(getattr(expression, "name", expression))


def _table_markdown(table: Table) -> str:
    lines = [f"## `{table.name}`", "", "| column | type | null | key |", "|---|---|---|---|"]
    pk = {c.name for c in table.primary_key.columns}
    for col in table.columns:
        keys = []
        if col.name in pk:
            keys.append("PK")
        keys.extend(f"FK → {fk.target_fullname}" for fk in col.foreign_keys)
        null = "yes" if col.nullable and col.name not in pk else "no"
        lines.append(f"| `{col.name}` | {col.type} | {null} | {', '.join(keys)} |")
    extras = [f"index `{i.name}` ({', '.join(map(_part, i.expressions))})" for i in table.indexes]
    extras += [
        f"unique ({', '.join(c.name for c in u.columns)})"
        for u in table.constraints
        if isinstance(u, UniqueConstraint)
    ]
    if table.dialect_options["sqlite"].get("with_rowid") is False:
        extras.append("SQLite: `WITHOUT ROWID` (rows stored in primary-key order)")
    if extras:
        lines += ["", *(f"- {e}" for e in sorted(extras))]
    return "\n".join(lines)


def schema_markdown() -> str:
    """The whole schema as Markdown."""
    design = (schema.__doc__ or "").split("\n\n", 1)[1].strip()
    parts = [_INTRO.format(revision=schema.SCHEMA_REVISION, design=design)]
    parts += [_table_markdown(t) for t in schema.metadata.sorted_tables]
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":  # pragma: no cover - documentation generator
    sys.stdout.write(schema_markdown())
