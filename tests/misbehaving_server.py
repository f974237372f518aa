"""A small local HTTP server that misbehaves on purpose, for faults a real FHIR server cannot produce
(slow answers, paging loops, counting concurrent requests, recording headers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[str, dict[str, str]], tuple[int, Any]]  # body: JSON value, bytes, or writer


@dataclass
class Recorder:
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def misbehaving_server(responder: Responder, delay: float = 0.0) -> Iterator[tuple[str, Recorder]]:
    """Serve ``responder(path, headers) -> (status, json body or bytes)`` on a free loopback port."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with recorder.lock:
                recorder.paths.append(self.path)
                recorder.headers.append(dict(self.headers))
                recorder.active += 1
                recorder.max_active = max(recorder.max_active, recorder.active)
            try:
                if delay:
                    time.sleep(delay)
                status, body = responder(self.path, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                if callable(body):  # writes its own body, e.g. slowly or without Content-Length
                    self.end_headers()
                    body(self.wfile)
                    return
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): expected
            finally:
                with recorder.lock:
                    recorder.active -= 1

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # The default listen backlog (5) drops connections when the service fetches many keys for many
        # patients at once; a dropped SYN costs a 1–3 s retry and looks like a timeout.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", recorder
    finally:
        server.shutdown()
        server.server_close()
