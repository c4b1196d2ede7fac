"""docs/storage-schema.md is generated from the schema and must be current."""

from __future__ import annotations

from pathlib import Path

from runyard.store.sql.schema import metadata
from runyard.store.sql.schema_doc import schema_markdown


def test_schema_doc_is_current() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "storage-schema.md").read_text()
    assert doc == schema_markdown(), (
        "regenerate: python -m runyard.store.sql.schema_doc > docs/storage-schema.md"
    )


def test_every_table_documented() -> None:
    rendered = schema_markdown()
    for table in metadata.sorted_tables:
        assert f"## `{table.name}`" in rendered
