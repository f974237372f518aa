"""One CDS Hooks service call, end to end and without Flask: request → prefetch (fetching what is
missing) → resources → cards. Shared by the HTTP service and the command line."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.client import FhirClient, build_session
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.fhir.target_policy import FhirPolicy
from cds_hooks.hooks.dispatch import DEFAULT_BASE_URL, evaluate_hook
from cds_hooks.hooks.prefetch import resolve, resolve_medication_references
from cds_hooks.hooks.protocol import CdsError, CdsRequest
from cds_hooks.hooks.registry import ServiceDefinition, build_services
from cds_hooks.process.config import Settings

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """Long-lived objects for evaluating requests: settings, knowledge, services, one HTTP session."""

    settings: Settings
    knowledge: Knowledge
    services: dict[str, ServiceDefinition] = field(default_factory=dict)
    session: requests.Session | None = None
    # Where request-supplied fhirServer URLs may point (the HTTP service always sets one; the command
    # line leaves it out: there the operator names the server).
    policy: FhirPolicy | None = None

    def __post_init__(self) -> None:
        if not self.services:
            self.services = build_services(self.knowledge, date_bounded=self.settings.prefetch_date_bound)
        if self.session is None:
            self.session = build_session(
                pool_size=max(10, self.settings.fhir_max_workers * 2), retries=self.settings.fhir_retries
            )

    def client(self, server: str, token: str | None = None, *, max_pages: int | None = None) -> FhirClient:
        """A FHIR client for ``server`` with this pipeline's timeouts, paging cap, policy and session."""
        s = self.settings
        assert self.session is not None
        return FhirClient(
            base_url=server,
            session=self.session,
            access_token=token,
            connect_timeout=s.fhir_connect_timeout,
            read_timeout=s.fhir_read_timeout,
            max_pages=max_pages or s.fhir_max_pages,
            total_timeout=s.fhir_total_timeout,
            max_response_bytes=s.fhir_max_response_bytes,
            policy=self.policy,
        )

    def client_for(self, req: CdsRequest) -> FhirClient | None:
        """A FHIR client for the request's ``fhirServer`` (with its token), or ``None`` without one."""
        if not req.fhir_server:
            return None
        return self.client(
            req.fhir_server, req.fhir_authorization.access_token if req.fhir_authorization else None
        )

    def run(
        self,
        service: ServiceDefinition,
        req: CdsRequest,
        *,
        base_url: str = DEFAULT_BASE_URL,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Evaluate one validated request; raises ``CdsError`` (412) when required data is missing."""
        client = self.client_for(req)
        workers = self.settings.fhir_max_workers
        now = now or datetime.now(UTC)
        resolution = resolve(
            req, service.prefetch, client, max_workers=workers, windows=service.windows, now=now
        )
        fetched = sorted(k for k, v in resolution.source.items() if v in ("fetched", "paged"))
        if fetched:
            log.info("fetched from fhirServer: %s", ",".join(fetched), extra={"fetched": fetched})
        resources = resolution.all_resources()
        if len(resources) > self.settings.max_resources:
            raise CdsError(
                413,
                f"The request brings {len(resources)} resources; this service evaluates at most "
                f"{self.settings.max_resources} (CDS_HOOKS_MAX_RESOURCES).",
            )
        index = ResourceIndex(resources)
        unresolved = resolve_medication_references(index, client, workers)
        if unresolved:
            log.warning("%d medication reference(s) could not be resolved", len(unresolved))
        return evaluate_hook(
            index,
            hook=service.hook,
            context=req.context,
            patient_id=req.patient_id,
            knowledge=self.knowledge,
            now=now,
            base_url=base_url,
        )
