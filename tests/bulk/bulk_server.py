"""A small but real FHIR Bulk Data server for the export tests: what the project's FHIR test server
(sekmet-fhir) does not do. Kick-off (``Patient/$export``, ``Group/<id>/$export``) answers 202 with a
Content-Location; the status answers 202 with ``Retry-After`` for the first ``polls`` requests, then the
manifest; the files are served with HTTP range support (206), and the first download of a file longer
than ``cut_after`` bytes is cut off there, as a dropped connection would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, request, send_file
from werkzeug.serving import make_server


@dataclass
class BulkServer:
    files: Path  # directory of the NDJSON files to serve
    token: str
    polls: int = 2
    retry_after: str = "1"
    cut_after: int | None = None
    base_url: str = ""
    kickoffs: list[dict[str, Any]] = field(default_factory=list)
    status_calls: int = 0
    ranges: list[str | None] = field(default_factory=list)
    _cut: set[str] = field(default_factory=set)

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.before_request
        def auth() -> None:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                abort(401)

        @app.get("/fhir/Patient/$export")
        @app.get("/fhir/Group/<group>/$export")
        def kick_off(group: str | None = None) -> Response:
            if "respond-async" not in request.headers.get("Prefer", ""):
                abort(400)
            self.kickoffs.append({"group": group, **request.args.to_dict(flat=False)})
            return Response(status=202, headers={"Content-Location": f"{self.base_url}/status/job1"})

        @app.get("/fhir/status/job1")
        def status() -> Response:
            self.status_calls += 1
            if self.status_calls <= self.polls:
                return Response(
                    status=202, headers={"Retry-After": self.retry_after, "X-Progress": "exporting"}
                )
            output = [
                {"type": p.name.split(".")[0], "url": f"{self.base_url}/files/{p.name}"}
                for p in sorted(self.files.iterdir())
            ]
            return jsonify(
                {
                    "transactionTime": "2026-11-27T00:00:00Z",
                    "request": "x",
                    "requiresAccessToken": True,
                    "output": output,
                    "error": [],
                }
            )

        @app.get("/fhir/files/<name>")
        def files(name: str) -> Response:
            path = self.files / name
            if not path.is_file():
                abort(404)
            self.ranges.append(request.headers.get("Range"))
            if self.cut_after is not None and path.stat().st_size > self.cut_after and not self._cut:
                self._cut.add(name)
                data = path.read_bytes()

                def broken() -> Iterator[bytes]:
                    yield data[: self.cut_after]
                    raise ConnectionError("cut off on purpose")

                return Response(broken(), headers={"Content-Length": str(len(data))})
            return send_file(path, mimetype="application/fhir+ndjson", conditional=True)

        return app


@contextmanager
def bulk_server(files: Path, token: str, **options: Any) -> Iterator[BulkServer]:
    server = BulkServer(files, token, **options)
    http = make_server("127.0.0.1", 0, server.app(), threaded=True)
    server.base_url = f"http://127.0.0.1:{http.server_port}/fhir"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        thread.join(5)
