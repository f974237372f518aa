"""What every fuzzed answer must satisfy: no 5xx, no stack trace or HTML, 4xx with an OperationOutcome."""

from __future__ import annotations

import json

from tests.fuzz.counter import COUNTER


def check_answer(status: int, body: bytes, content_type: str) -> None:
    COUNTER.record(status)
    text = body.decode("utf-8", "replace")
    assert status < 500, f"server error {status}: {text[:300]}"
    assert "Traceback" not in text and "<html" not in text.lower() and "<!doctype" not in text.lower()
    if status >= 400:
        assert "json" in content_type, content_type
        outcome = json.loads(text)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["diagnostics"]
