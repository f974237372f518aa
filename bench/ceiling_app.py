"""The ceiling: the least a Flask service can do with a CDS Hooks request under the same gunicorn.

It reads and decodes the same JSON body with the service's decoder (``cds_hooks.fhir.json_codec``,
orjson, so the ratio compares everything but the decoding), and answers a fixed one-card response.
Whatever the service costs above this is our own code.

    gunicorn -w 2 --threads 4 -k gthread "bench.ceiling_app:create_app()"
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, request

from cds_hooks.fhir import json_codec

CARD: dict[str, Any] = {
    "cards": [
        {
            "uuid": "00000000-0000-4000-8000-000000000000",
            "summary": "Ceiling: a fixed card",
            "indicator": "info",
            "source": {"label": "benchmark ceiling"},
        }
    ]
}


def create_app() -> Flask:
    """A Flask app with the service's POST endpoint path and a health check."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    body = json.dumps(CARD)

    @app.post("/cds-services/<service_id>")
    def call_service(service_id: str) -> Response:
        parsed = json_codec.loads(request.get_data(cache=False))
        if not isinstance(parsed, dict) or "context" not in parsed:
            return Response('{"error": "bad request"}', status=400, mimetype="application/json")
        return Response(body, mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")

    return app


app = create_app()
