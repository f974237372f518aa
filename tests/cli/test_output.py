"""Cards as text for a person: the titled evidence lists of the detail, suggestions and their actions."""

from __future__ import annotations

from cds_hooks.cli.output import detail_sections, format_response, plain

DETAIL = (
    "The patient has signs of **severe insulin resistance** (listed below).\n\n"
    "**Evidence**\n\n"
    "- Total daily insulin dose 300 U/day (extreme: > 200)\n"
    "- Systemic lupus erythematosus (active condition, since 2024-03-23)\n\n"
    "**Other causes of insulin resistance on record**\n\n"
    "- Obesity (BMI 41)\n\n"
    "**Not used**\n\nA paragraph, not a list.\n\n"
    "[Clinical source](http://localhost:8080/sources/x)"
)


def test_detail_sections_are_the_titled_lists():
    assert detail_sections(DETAIL) == [
        (
            "Evidence",
            [
                "Total daily insulin dose 300 U/day (extreme: > 200)",
                "Systemic lupus erythematosus (active condition, since 2024-03-23)",
            ],
        ),
        ("Other causes of insulin resistance on record", ["Obesity (BMI 41)"]),
    ]


def test_plain_drops_bold_and_spells_out_links():
    assert plain("**Type B** see [source](https://x.org/s)") == "Type B see source (https://x.org/s)"


def test_format_response_with_several_cards_and_actions():
    response = {
        "cards": [
            {
                "summary": "Severe insulin resistance with autoimmunity: consider type B insulin resistance",
                "indicator": "warning",
                "detail": DETAIL,
                "source": {
                    "label": "CDS",
                    "url": "http://localhost:8080/sources/x",
                    "topic": {"code": "type-b-insulin-resistance"},
                },
                "suggestions": [
                    {
                        "label": "Order the suggested workup (2 tests)",
                        "actions": [
                            {
                                "type": "create",
                                "description": "Order Insulin receptor antibody",
                                "resource": {"resourceType": "ServiceRequest", "status": "draft"},
                            },
                            {"type": "delete", "description": "Stop the old order", "resourceId": ["A/1"]},
                        ],
                    }
                ],
            },
            {"summary": "Just so you know", "indicator": "info"},
        ]
    }

    text = format_response(response, "Patient p9 (somewhere)")

    assert text == (
        "Patient p9 (somewhere): 2 cards\n"
        "\n"
        "1. WARNING  Severe insulin resistance with autoimmunity: consider type B insulin resistance\n"
        "   rule: type-b-insulin-resistance\n"
        "   Evidence\n"
        "     - Total daily insulin dose 300 U/day (extreme: > 200)\n"
        "     - Systemic lupus erythematosus (active condition, since 2024-03-23)\n"
        "   Other causes of insulin resistance on record\n"
        "     - Obesity (BMI 41)\n"
        "   Suggestions\n"
        "     * Order the suggested workup (2 tests)\n"
        "         create ServiceRequest (draft): Order Insulin receptor antibody\n"
        "         delete A/1: Stop the old order\n"
        "   Source: CDS: http://localhost:8080/sources/x\n"
        "\n"
        "2. INFO  Just so you know\n"
    )


def test_no_cards():
    assert format_response({"cards": []}, "Patient p1") == "Patient p1: no cards\n"


def test_plain_shows_escaped_record_text_as_written():
    from cds_hooks.clinical.cards.record_text import markdown

    text = "Hypurin *Porcine* <b>x</b> [a](javascript:y) www.e.example a@b.example 1. & \\"
    assert plain(markdown(text)) == text
