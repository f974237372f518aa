"""One log line per request: method, path, status, duration, service, hookInstance and card count."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, request

log = logging.getLogger("cds_hooks.request")


def register_request_log(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        duration_ms = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1)
        service = request.view_args.get("service_id") if request.view_args else None
        hook_instance = g.get("hook_instance")
        extra: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "service": service,
            "hook_instance": hook_instance,
            "cards": g.get("card_count"),
        }
        log.info(
            "%s %s %s %.1fms service=%s hookInstance=%s cards=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            service or "-",
            hook_instance or "-",
            g.get("card_count", "-"),
            extra=extra,
        )
        return response
