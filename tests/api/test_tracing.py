"""Optional OpenTelemetry tracing (issue 11 item 5): with CDS_HOOKS_OTEL=true each request is a server
span, and a service call's span carries its hookInstance (here exported to memory, not over OTLP)."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from tests.builders import SERVICE, SERVICE_URL, porcine_request
from tests.conftest import make_settings


def test_a_service_call_is_a_server_span_with_its_hook_instance(tmp_path: Path):
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the process's first: install an SDK provider
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(make_settings(tmp_path, otel=True), knowledge=default_knowledge())
    body = porcine_request("traced")
    assert app.test_client().post(SERVICE_URL, json=body).status_code == 200
    spans = [s for s in exporter.get_finished_spans() if s.attributes.get("cds_hooks.hook_instance")]
    (span,) = [s for s in spans if s.attributes["cds_hooks.hook_instance"] == body["hookInstance"]]
    assert span.kind == SpanKind.SERVER
    assert span.attributes["cds_hooks.service"] == SERVICE
    assert span.attributes["cds_hooks.hook"] == "patient-view"
    assert span.attributes.get("http.status_code", span.attributes.get("http.response.status_code")) == 200
    app.extensions["cds_hooks"].store.dispose()


def test_tracing_is_off_by_default(client):
    from cds_hooks.api import tracing

    assert client.post(SERVICE_URL, json=porcine_request()).status_code == 200
    assert (
        tracing.install_tracing(client.application, client.application.extensions["cds_hooks"].settings)
        is False
    )
