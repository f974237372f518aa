"""One plan for the cards of one answer (issue 22 B7): no two cards propose the same test or referral.

Rules are evaluated independently, so the type B card and the insulin antibody card may both want
insulin and C-peptide, and a steroid card may want the HbA1c the ataxia-telangiectasia card proposes.
The first card in ``RULES`` order (the order cards are shown in) keeps each test and the endocrinology
referral; a later card proposes it no more and names the card that does (``RuleResult.deferred``).
"""

from __future__ import annotations

from dataclasses import replace

from cds_hooks.clinical.rules.base import RuleResult

REFERRAL = "referral"  # the endocrinology referral, shared like a test


def share_out(results: list[RuleResult]) -> list[RuleResult]:
    """The results with every test (workup or monitoring) and the referral on the first card that
    proposes it, and each later card's ``deferred`` naming what it left to which card."""
    owner: dict[str, str] = {}
    shared: list[RuleResult] = []
    for result in results:
        wanted = [*result.workup, *result.monitoring, *([REFERRAL] if result.referral else [])]
        deferred = tuple((kind, owner[kind]) for kind in dict.fromkeys(wanted) if kind in owner)
        if deferred:
            given = {kind for kind, _ in deferred}
            result = replace(
                result,
                workup=tuple(k for k in result.workup if k not in given),
                monitoring=tuple(k for k in result.monitoring if k not in given),
                referral=result.referral and REFERRAL not in given,
                deferred=deferred,
            )
        for kind in wanted:
            owner.setdefault(kind, result.rule_id)
        shared.append(result)
    return shared
