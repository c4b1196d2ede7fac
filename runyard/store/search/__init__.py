"""MLflow's search language: filter and order-by parsing, and page tokens.

This layer is pure Python (no SQLAlchemy); ``runyard.store.sql.search_sql`` compiles its AST.
"""

from runyard.store.search.grammar import (
    Comparison,
    Entity,
    OrderBy,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)
from runyard.store.search.paging import decode_page_token, encode_page_token

__all__ = [
    "Comparison",
    "Entity",
    "OrderBy",
    "decode_page_token",
    "encode_page_token",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_run_filter",
    "parse_run_order_by",
]
