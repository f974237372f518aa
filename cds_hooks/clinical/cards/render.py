"""Rule results → CDS Hooks 2.0 cards (O1–O6) that read like a consultant's note (issue 14 C14–C17).

- **summary**: a template from ``knowledge/cards/<rule-id>.toml`` filled with the patient's decisive
  values ("Bovine insulin 42 U/day, insulin antibodies 46 U/mL: …"), under 140 characters;
- **detail**: at most 60 words of prose (why, what to do, the hypoglycaemia warning on every switch),
  then short lists — evidence, other causes, pending tests, results that could not be used;
- **suggestions**: draft FHIR resources (the switch with its stop action, tests, timed monitoring,
  referral);
- **links**: exactly one, to the rule's page (``/sources/<rule-id>``); never a link in the markdown.

Every piece of record text is escaped before it enters a card (``record_text``). No member is ever null
or empty (J2): optional members are left out when there is nothing to say.
"""

from __future__ import annotations

import json
from typing import Any

from cds_hooks.clinical.cards import record_text
from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.cards.evidence_lines import (
    deferred_lines,
    evidence_lines,
    pending_lines,
    unusable_lines,
)
from cds_hooks.clinical.cards.phrases import Values, upper_first
from cds_hooks.clinical.cards.suggestions import (
    monitoring_suggestion,
    new_uuid,
    referral_suggestion,
    rule_page_url,
    timed_monitoring_suggestion,
    workup_suggestion,
)
from cds_hooks.clinical.cards.switch_order import (
    plan_of,
    replace_draft_suggestion,
    switch_phrases,
    switch_suggestion,
)
from cds_hooks.clinical.facts.model import MedicationUse
from cds_hooks.clinical.rules import RuleResult
from cds_hooks.clinical.wording import SUMMARY_LIMIT, Variant

RULE_SYSTEM = "https://immune-ir-cds.example.org/fhir/CodeSystem/rules"
OVERRIDE_SYSTEM = "https://immune-ir-cds.example.org/fhir/CodeSystem/override-reason"
SEED_SOURCE = "immune-insulin-resistance"  # the seed text's page
APP_LAUNCH_PATH = "/app/launch"  # the SMART app: timeline and "why this card" (docs/timeline.md)


def summary(ctx: CardContext, result: RuleResult, variant: Variant, switching: bool) -> str:
    """The template filled with the decisive values; with fewer of them when the text would reach the
    limit, and cut only as a last resort."""
    template = variant.summary if switching or not variant.summary_no_switch else variant.summary_no_switch
    text = ""
    for max_signs in (2, 1):
        text = upper_first(Values(ctx, result, record_text.plain, max_signs).fill(template))
        if len(text) < SUMMARY_LIMIT:
            return text
    return text[: SUMMARY_LIMIT - 2].rstrip() + "…"


# ----------------------------------------------------------------------------------------------------
# Detail


def _section(heading: str, lines: list[str]) -> str | None:
    return f"**{heading}**\n\n" + "\n".join(f"- {line}" for line in lines) if lines else None


def detail(ctx: CardContext, result: RuleResult, variant: Variant, switching: bool) -> str:
    wording = ctx.knowledge.wording
    template = variant.detail if switching or not variant.detail_no_switch else variant.detail_no_switch
    prose = [Values(ctx, result, record_text.markdown).fill(template)]
    if switching:
        plan = plan_of(ctx, result.plan)
        prose.append(switch_phrases(ctx, plan, switched(result), record_text.markdown)["prose"])
        prose.append(wording.switch.hypoglycaemia)
    shown = set(result.evidence)
    sections = [
        " ".join(prose),
        _section(wording.evidence_heading, evidence_lines(ctx, result.evidence, to_stop=result.switch_from)),
        _section(
            wording.other_causes_heading,
            evidence_lines(ctx, [e for e in ctx.findings.other_causes if e not in shown]),
        ),
        _section(wording.pending_heading, pending_lines(ctx, result.pending)),
        _section(wording.deferred_heading, deferred_lines(ctx, result.deferred)),
        _section(wording.unusable_heading, unusable_lines(ctx)),
    ]
    return "\n\n".join(s for s in sections if s)


# ----------------------------------------------------------------------------------------------------
# The card


def switched(result: RuleResult) -> list[MedicationUse]:
    """The animal insulins the card switches: current ones, or the drafts it replaces."""
    return list(result.switch_from) or [use for use, _ in result.replace_drafts]


def _switch_suggestions(ctx: CardContext, result: RuleResult) -> list[dict[str, Any]]:
    plan = plan_of(ctx, result.plan)
    suggestions = [
        replace_draft_suggestion(ctx, plan, use, draft) for use, draft in result.replace_drafts
    ] + [s for med in result.switch_from if (s := switch_suggestion(ctx, plan, med)) is not None]
    return [{**s, "uuid": new_uuid()} for s in suggestions]


def render_card(ctx: CardContext, result: RuleResult) -> dict[str, Any]:
    """One card for one rule result."""
    wording = ctx.knowledge.wording
    card_wording = wording.cards[result.rule_id]
    variant = card_wording.variants[result.variant]
    switching = bool(result.switch_from or result.replace_drafts)
    text = summary(ctx, result, variant, switching)
    url = rule_page_url(ctx, result.rule_id)
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": text,
        "indicator": result.indicator or card_wording.indicator,
        "detail": detail(ctx, result, variant, switching),
        "source": {
            "label": wording.source_label,
            "url": url,
            "topic": {"system": RULE_SYSTEM, "code": result.rule_id, "display": card_wording.page.title},
        },
    }
    timed = card_wording.monitoring_for(variant)
    if timed is not None:
        monitoring = timed_monitoring_suggestion(ctx, timed)
    else:
        monitoring = monitoring_suggestion(ctx, result.monitoring)
    suggestions = [
        *_switch_suggestions(ctx, result),
        *(
            s
            for s in (
                monitoring,
                workup_suggestion(ctx, result.workup),
                referral_suggestion(ctx) if result.referral else None,
            )
            if s is not None
        ),
    ]
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one" if len(suggestions) == 1 else "any"
    snooze_days = str(wording.snooze_days(result.rule_id))
    card["overrideReasons"] = [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": display.replace("{snooze_days}", snooze_days)}
        for code, display in wording.override_reasons
    ]
    card["links"] = [
        {"label": wording.rule_link_label, "url": url, "type": "absolute"},
        smart_link(ctx, result.rule_id, card["uuid"]),
    ]
    return card


def smart_link(ctx: CardContext, rule_id: str, card_uuid: str) -> dict[str, Any]:
    """The card's link to the SMART app: the EHR launches it with this rule and card as ``appContext``."""
    return {
        "label": ctx.knowledge.wording.timeline_link_label,
        "url": f"{ctx.base_url}{APP_LAUNCH_PATH}",
        "type": "smart",
        "appContext": json.dumps({"rule": rule_id, "card": card_uuid}, separators=(",", ":")),
    }
