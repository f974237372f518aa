"""Schema-driven fuzzing of every endpoint from the service's own /openapi.json (schemathesis).

Uses schemathesis' hypothesis strategies directly (its pytest plugin does not support pytest 9 yet)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from cds_hooks.api.openapi import openapi_document
from tests.fuzz.checks import check_answer
from tests.fuzz.conftest import EXAMPLES

OPERATIONS = [
    (method.upper(), path)
    for path, methods in openapi_document(["immune-insulin-resistance"])["paths"].items()
    for method in methods
]


@pytest.fixture(scope="session")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_answer_is_well_formed(api_schema, method, path):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        response = case.call()
        headers = {k.lower(): v for k, v in response.headers.items()}
        content_type = headers.get("content-type", "")
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        check_answer(response.status_code, response.content, content_type)

    run()
