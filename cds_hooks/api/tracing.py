"""Optional OpenTelemetry tracing (``CDS_HOOKS_OTEL=true``; the ``otel`` extra installs the packages).

Each request becomes a span (``opentelemetry-instrumentation-flask``); a service call carries its
``hookInstance``, service and hook as span attributes. Spans go to an OTLP/HTTP exporter configured by
the standard ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_SERVICE_NAME`` variables. A tracer provider that the
host process already installed is used as it is.
"""

from __future__ import annotations

import logging

from flask import Flask

from cds_hooks.process.config import PREFIX, ConfigError, Settings

log = logging.getLogger(__name__)
_enabled = False


def install_tracing(app: Flask, settings: Settings) -> bool:
    """Instrument ``app`` when tracing is on; a clear configuration error when the packages are missing."""
    global _enabled
    if not settings.otel:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        raise ConfigError(
            f"{PREFIX}OTEL=true needs the OpenTelemetry packages: pip install 'immune-ir-cds-hooks[otel]'"
        ) from None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(_otlp_provider())
    FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,metrics")
    _enabled = True
    return True


def _otlp_provider():  # type: ignore[no-untyped-def]
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "immune-ir-cds-hooks"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("OpenTelemetry tracing on: spans exported over OTLP/HTTP")
    return provider


def annotate(hook_instance: str, service_id: str, hook: str) -> None:
    """Put the call's hookInstance, service and hook on the current request span."""
    if not _enabled:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    span.set_attribute("cds_hooks.hook_instance", hook_instance)
    span.set_attribute("cds_hooks.service", service_id)
    span.set_attribute("cds_hooks.hook", hook)
