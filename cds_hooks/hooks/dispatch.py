"""Which clinical evaluation a hook runs, and the offline evaluation of a saved request.

The HTTP pipeline and the CLI share :func:`evaluate_hook`; :func:`evaluate_offline` reads a saved
request's prefetch only (tests, vignettes, ``cds-hooks evaluate``, the benchmark).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cds_hooks.clinical.evaluation import DEFAULT_BASE_URL, evaluate_index
from cds_hooks.clinical.knowledge import Knowledge, default_knowledge
from cds_hooks.clinical.orders import evaluate_orders
from cds_hooks.clinical.rules import RuleResult
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.prefetch import prefetched
from cds_hooks.hooks.protocol import ORDER_HOOKS, CdsError, parse_service_request

__all__ = ["DEFAULT_BASE_URL", "HOOKS", "evaluate_hook", "evaluate_offline"]

HOOKS = ("patient-view", *ORDER_HOOKS)


def evaluate_hook(
    index: ResourceIndex,
    *,
    hook: str,
    context: dict[str, Any],
    patient_id: str,
    knowledge: Knowledge,
    now: datetime,
    base_url: str = DEFAULT_BASE_URL,
    shown: list[tuple[RuleResult, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Evaluate the rules of ``hook``: the patient's record, and for the order hooks its draft orders.
    ``shown``, when given, receives each card with the rule result it renders."""
    if hook in ORDER_HOOKS:
        return evaluate_orders(
            index,
            hook=hook,
            context=context,
            patient_id=patient_id,
            knowledge=knowledge,
            now=now,
            base_url=base_url,
            shown=shown,
        )
    return evaluate_index(
        index, patient_id=patient_id, knowledge=knowledge, now=now, base_url=base_url, shown=shown
    )


def evaluate_offline(
    request: dict[str, Any],
    *,
    now: datetime | None = None,
    knowledge: Knowledge | None = None,
    base_url: str = DEFAULT_BASE_URL,
) -> dict[str, Any]:
    """Evaluate a saved request (patient-view, order-select or order-sign) from its prefetch alone: absent
    keys count as no data. The HTTP service instead fetches absent keys."""
    hook = request.get("hook") if isinstance(request, dict) else None
    if hook not in HOOKS:
        raise CdsError(400, f"'hook' must be one of {', '.join(HOOKS)}.", expression=["hook"])
    req = parse_service_request(request, hook)
    index = ResourceIndex([r for key, value in req.prefetch.items() for r in prefetched(key, value) or ()])
    return evaluate_hook(
        index,
        hook=hook,
        context=req.context,
        patient_id=req.patient_id,
        knowledge=knowledge or default_knowledge(),
        now=now or datetime.now(UTC),
        base_url=base_url,
    )
