"""Page tokens for search APIs, byte-for-byte the ones MLflow emits.

A token is the base64 of the JSON ``{"offset": N}``, e.g. ``eyJvZmZzZXQiOiAxfQ==`` for offset 1.
Clients treat it as opaque, but a client may hold a token from an MLflow server and replay it
against runyard (or the reverse), so the encoding is kept identical.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from runyard.errors import InvalidParameterValue

__all__ = ["decode_keyset_token", "decode_page_token", "encode_page_token"]


def encode_page_token(offset: int, after: Sequence[Any] | None = None) -> str:
    """The page token that resumes a search at ``offset``.

    Args:
        offset: Number of results already returned (non-negative).
        after: The sort key of the last result returned, for a keyset read of the next page
            (:func:`decode_keyset_token`); MLflow's servers read only the offset.

    Returns:
        ``base64(json.dumps({"offset": offset}))`` as text, exactly like MLflow (with an
        ``"after"`` list when given).
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid page offset {offset!r}: expected an integer >= 0")
    payload: dict[str, Any] = {"offset": offset}
    if after is not None:
        payload["after"] = list(after)
    return base64.b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")


def decode_keyset_token(token: str | bytes | None, width: int) -> tuple[int, list[Any] | None]:
    """The offset of a page token and, when it carries one of ``width`` values, the sort key
    of the last result before it (see :func:`encode_page_token`): a read can resume right after
    that key instead of skipping ``offset`` results. A token without a usable key (MLflow's,
    an older runyard's) resumes at its offset."""
    offset = decode_page_token(token)
    after = _parse(token).get("after") if token else None
    if not isinstance(after, list) or len(after) != width:
        return offset, None
    if not all(type(v) in (int, float, bool) for v in after):
        return offset, None
    return offset, after


def decode_page_token(token: str | bytes | None) -> int:
    """The offset a page token encodes; an empty or missing token means offset 0.

    Args:
        token: A token from :func:`encode_page_token` (or from an MLflow server).

    Returns:
        The offset, a non-negative integer.

    Raises:
        InvalidParameterValue: With MLflow's messages: "Invalid page token, could not
            base64-decode" when the text is not base64, "Invalid page token, decoded
            value=..." when it is not JSON, "Invalid page token, parsed value=..." when the
            JSON has no usable offset.
    """
    if not token:
        return 0
    parsed = _parse(token)
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    # MLflow accepts the offset as a number or a string of digits; bools are not numbers here.
    if isinstance(offset, str) and offset.strip().isdigit():
        offset = int(offset)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid page token, parsed value={parsed!r}")
    return offset


def _parse(token: str | bytes) -> Any:
    """The JSON value of a token."""
    try:
        # validate=True: the default silently drops non-alphabet characters, which would turn
        # plain garbage into an empty (and confusingly reported) payload.
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue("Invalid page token, could not base64-decode") from None
    try:
        return json.loads(decoded)
    except ValueError:
        raise InvalidParameterValue(f"Invalid page token, decoded value={decoded!r}") from None
