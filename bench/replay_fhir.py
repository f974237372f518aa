"""A FHIR server that serves requests concurrently: it replays the answers of an upstream server (the
real test server), fetched once and cached, after a fixed delay per request.

sekmet-fhir answers one request at a time, so "all prefetch keys missing" measured against it shows the
server's queue more than the service's fan-out. This stand-in answers every request after the same
delay, whatever else it is serving, as a scaled-out EHR FHIR endpoint does.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import requests


class ReplayFhirServer:
    """``with ReplayFhirServer(upstream, delay_s=0.02) as replay: replay.base_url``."""

    def __init__(self, upstream: str, delay_s: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay_s = delay_s
        self._cache: dict[str, tuple[int, str, bytes]] = {}
        self._lock = threading.Lock()
        self._session = requests.Session()
        self.requests_served = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests answered at the same time
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with outer._lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    self._reply()
                finally:
                    with outer._lock:
                        outer.in_flight -= 1

            def _reply(self) -> None:
                started = time.perf_counter()
                status, ctype, body = outer._answer(self.path)
                remaining = outer.delay_s - (time.perf_counter() - started)
                if remaining > 0:
                    time.sleep(remaining)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with outer._lock:
                    outer.requests_served += 1

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None:
            return cached
        upstream_path = path[len("/") :] if path.startswith("/") else path
        r = self._session.get(f"{self.upstream}/{upstream_path}", timeout=60)
        # Links in the answer (``next`` pages, fullUrls) point here, not upstream.
        body = r.content.replace(self.upstream.encode(), self.base_url.encode())
        answer = (r.status_code, r.headers.get("Content-Type", "application/fhir+json"), body)
        with self._lock:
            self._cache[path] = answer
        return answer

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()
