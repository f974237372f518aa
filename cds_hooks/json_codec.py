"""Decoding request bodies: orjson, because parsing is most of the cost of a large prefetch (a
5,000-resource request parses ~4× faster than with the standard library), and it refuses deep nesting
(over 1,024 levels) and NaN/Infinity with an error instead of recursing."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def loads(raw: bytes | str) -> Any:
    """Decode JSON; raises ``JSONDecodeError`` (a ``ValueError``) with a message saying where it failed."""
    return orjson.loads(raw)
