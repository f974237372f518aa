"""The Flask application factory: settings, knowledge, store, blueprints, CORS, errors, request log.

``gunicorn "cds_hooks.app:create_app()"`` is the production entry point. Nothing is created at import
time; every resource the app needs hangs off ``app.extensions["cds_hooks"]`` (a ``Runtime``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS

from cds_hooks.api.audit_trail import register_audit_trail
from cds_hooks.api.discovery import bp as discovery_bp
from cds_hooks.api.errors import register_error_handlers
from cds_hooks.api.feedback import bp as feedback_bp
from cds_hooks.api.health import bp as health_bp
from cds_hooks.api.metrics import bp as metrics_bp
from cds_hooks.api.metrics import register_request_metrics
from cds_hooks.api.request_log import register_request_log
from cds_hooks.api.runtime import EXTENSION, Runtime
from cds_hooks.api.services import bp as services_bp
from cds_hooks.api.stats import bp as stats_bp
from cds_hooks.api.tracing import install_tracing
from cds_hooks.clinical.knowledge import Knowledge, load_knowledge
from cds_hooks.clinical.rules import required_thresholds
from cds_hooks.fhir import json_codec
from cds_hooks.fhir.target_policy import FhirPolicy
from cds_hooks.hooks.pipeline import Pipeline
from cds_hooks.hooks.warmup import PATIENT as WARM_UP_PATIENT
from cds_hooks.hooks.warmup import warm_up
from cds_hooks.process import metrics
from cds_hooks.process.config import ConfigError, Settings
from cds_hooks.process.gc_tuning import collect_between_requests, tune_gc
from cds_hooks.process.log_config import configure_logging
from cds_hooks.process.pseudonym import Pseudonymizer, PseudonymKeyError, load_key
from cds_hooks.security.jwt_verification import install_jwt_verification
from cds_hooks.store.database import Store
from cds_hooks.store.recorder import Recorder
from cds_hooks.web.dashboard import bp as dashboard_bp
from cds_hooks.web.smart_app import bp as smart_app_bp
from cds_hooks.web.sources import bp as sources_bp

log = logging.getLogger(__name__)
PSEUDONYM_KEY_CHECK = "pseudonym_key_check"


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
        knowledge = load_knowledge(
            Path(settings.knowledge_dir) if settings.knowledge_dir else None,
            required_thresholds=required_thresholds(),
        )
    _check_card_log_retention(settings, knowledge)
    app = Flask(__name__)
    # Werkzeug enforces this while the body is read, with or without Content-Length (413).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = OrjsonProvider(app)
    store = store or Store(settings.resolved_database_url)
    pseudonyms = _pseudonymizer(settings, store)
    recorder = Recorder(store, settings)
    app.extensions[EXTENSION] = Runtime(
        settings=settings,
        pipeline=Pipeline(
            settings=settings,
            knowledge=knowledge,
            policy=FhirPolicy.from_settings(settings),
            memory=recorder,
            pseudonyms=pseudonyms,
        ),
        store=store,
        recorder=recorder,
    )
    if settings.metrics:
        metrics.enable()

    CORS(
        app,
        origins=settings.origins,
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=86400,
    )

    for bp in (
        discovery_bp,
        services_bp,
        feedback_bp,
        health_bp,
        sources_bp,
        stats_bp,
        metrics_bp,
        smart_app_bp,
        dashboard_bp,
    ):
        app.register_blueprint(bp)

    register_error_handlers(app)
    register_request_log(app)
    register_request_metrics(app)
    register_audit_trail(app)
    install_tracing(app, settings)
    if settings.warm_up:
        warm_up(knowledge)
        _warm_card_memory(recorder, knowledge)
    tune_gc()  # after the knowledge, models and warm-up, so all of it is frozen out of collections

    @app.after_request
    def _collect_garbage_when_sent(response: Response) -> Response:
        response.call_on_close(collect_between_requests)  # after the body is sent: no added latency
        return response

    # After the request timer, so that refused calls are logged with their duration too.
    install_jwt_verification(app, settings, app.extensions[EXTENSION].store.engine)
    return app


def _check_card_log_retention(settings: Settings, knowledge: Knowledge) -> None:
    """A snooze rests on its feedback and card in the card log: a shorter retention would end it early."""
    days = settings.card_log_retention_days
    longest = max((knowledge.wording.snooze_days(rule) for rule in knowledge.wording.cards), default=0)
    if days and days <= longest:
        raise ConfigError(
            f"CDS_HOOKS_CARD_LOG_RETENTION_DAYS={days} must be more than the longest snooze, {longest} days "
            "(snooze_days in knowledge/cards/): a snoozed card would come back when its feedback is deleted"
        )


def _warm_card_memory(recorder: Recorder, knowledge: Knowledge) -> None:
    """Run the card memory's two look-ups once (read-only, for a pseudonym no patient has), so that the
    first request does not pay for compiling their SQL."""
    rules = sorted(knowledge.wording.cards)
    since = datetime.now(UTC)
    try:
        recorder.snoozes(WARM_UP_PATIENT, rules, since)
        recorder.acknowledged_select_cards(WARM_UP_PATIENT, rules, since)
    except Exception:  # whatever the database driver raises: the first request will compile them
        log.warning("card memory warm-up failed; the first request of this worker will be slower")


def _pseudonymizer(settings: Settings, store: Store) -> Pseudonymizer:
    """The patient-pseudonym key; warns when another instance on the same database uses another key
    (each would then recognise only its own patients: snoozes would not carry across)."""
    try:
        pseudonyms = Pseudonymizer(load_key(settings.pseudonym_key, settings.data_dir))
    except (PseudonymKeyError, OSError) as exc:
        raise ConfigError(f"pseudonym key: {exc}") from None
    if store.check_shared_value(PSEUDONYM_KEY_CHECK, pseudonyms.key_check()) != pseudonyms.key_check():
        log.error(
            "this instance's patient-pseudonym key differs from the one other instances use with this "
            "database: set CDS_HOOKS_PSEUDONYM_KEY to the same value on every instance (docs/security.md)"
        )
    return pseudonyms
