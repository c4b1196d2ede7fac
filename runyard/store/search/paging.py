"""Page tokens for search APIs, byte-for-byte the ones MLflow emits.

A token is the base64 of the JSON ``{"offset": N}``, e.g. ``eyJvZmZzZXQiOiAxfQ==`` for offset 1.
Clients treat it as opaque, but a client may hold a token from an MLflow server and replay it
against runyard (or the reverse), so the encoding is kept identical.
"""

from __future__ import annotations

import base64
import binascii
import json

from runyard.errors import InvalidParameterValue

__all__ = ["decode_page_token", "encode_page_token"]


def encode_page_token(offset: int) -> str:
    """The page token that resumes a search at ``offset``.

    Args:
        offset: Number of results already returned (non-negative).

    Returns:
        ``base64(json.dumps({"offset": offset}))`` as text, exactly like MLflow.
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid page offset {offset!r}: expected an integer >= 0")
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8")).decode("ascii")


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
    try:
        # validate=True: the default silently drops non-alphabet characters, which would turn
        # plain garbage into an empty (and confusingly reported) payload.
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue("Invalid page token, could not base64-decode") from None
    try:
        parsed = json.loads(decoded)
    except ValueError:
        raise InvalidParameterValue(f"Invalid page token, decoded value={decoded!r}") from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    # MLflow accepts the offset as a number or a string of digits; bools are not numbers here.
    if isinstance(offset, str) and offset.strip().isdigit():
        offset = int(offset)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid page token, parsed value={parsed!r}")
    return offset
