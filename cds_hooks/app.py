"""The Flask application factory: settings, knowledge, store, blueprints, CORS, errors, request log.

``gunicorn "cds_hooks.app:create_app()"`` is the production entry point. Nothing is created at import
time; every resource the app needs hangs off ``app.extensions["cds_hooks"]`` (a ``Runtime``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from . import json_codec
from .auth import install_jwt_verification
from .config import Settings
from .fhir_policy import FhirPolicy
from .gc_tuning import tune_gc
from .knowledge import Knowledge, load_knowledge
from .log_config import configure_logging
from .pipeline import Pipeline
from .protocol import CdsError, operation_outcome
from .services import ServiceDefinition
from .store import Store

log = logging.getLogger("cds_hooks.request")


@dataclass
class Runtime:
    """Long-lived objects shared by all requests of one worker process."""

    settings: Settings
    pipeline: Pipeline
    store: Store

    @property
    def knowledge(self) -> Knowledge:
        return self.pipeline.knowledge

    @property
    def services(self) -> dict[str, ServiceDefinition]:
        return self.pipeline.services


def runtime() -> Runtime:
    return current_app.extensions["cds_hooks"]


class OrjsonProvider(DefaultJSONProvider):
    """Responses encoded with orjson (the same library that decodes requests): a card response with its
    draft resources is ~10 kB, and encoding it is a measurable share of a request. Key order is kept."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return json_codec.dumps(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return json_codec.loads(s)


def create_app(
    settings: Settings | None = None, *, knowledge: Knowledge | None = None, store: Store | None = None
) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    if knowledge is None:
        from pathlib import Path

        knowledge = load_knowledge(Path(settings.knowledge_dir) if settings.knowledge_dir else None)
    app = Flask(__name__)
    # Werkzeug enforces this while the body is read, with or without Content-Length (413).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = OrjsonProvider(app)
    app.extensions["cds_hooks"] = Runtime(
        settings=settings,
        pipeline=Pipeline(settings=settings, knowledge=knowledge, policy=FhirPolicy.from_settings(settings)),
        store=store or Store(settings.resolved_database_url),
    )

    CORS(
        app,
        origins=settings.origins,
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=86400,
    )

    from .api.discovery import bp as discovery_bp
    from .api.feedback import bp as feedback_bp
    from .api.health import bp as health_bp
    from .api.services import bp as services_bp
    from .api.sources import bp as sources_bp
    from .api.stats import bp as stats_bp

    for bp in (discovery_bp, services_bp, feedback_bp, health_bp, sources_bp, stats_bp):
        app.register_blueprint(bp)

    _register_error_handlers(app)
    _register_request_log(app)
    tune_gc()  # after the knowledge and models are loaded, so they are frozen out of collections
    # After the request timer, so that refused calls are logged with their duration too.
    install_jwt_verification(app, settings, app.extensions["cds_hooks"].store.engine)
    return app


def error_response(
    status: int, message: str, code: str | None = None, expression: list[str] | None = None
) -> Response:
    error = CdsError(status, message, code=code, expression=expression)
    body = operation_outcome(error.message, code=error.code, expression=error.expression)
    return Response(json.dumps(body), status=status, mimetype="application/fhir+json")


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def cds_error(exc: CdsError) -> Response:
        return error_response(exc.status, exc.message, exc.code, exc.expression)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        messages = {
            404: "No such endpoint. Service discovery is at GET /cds-services.",
            405: f"Method {request.method} is not allowed on {request.path}.",
            413: f"The request body is larger than the limit of {runtime().settings.max_body_bytes} bytes.",
        }
        response = error_response(status, messages.get(status, exc.description or exc.name))
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        # The traceback goes to the server log only; the client sees a generic OperationOutcome.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            500, "The service could not process the request because of an internal error.", "exception"
        )


def _register_request_log(app: Flask) -> None:
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
