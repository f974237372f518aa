"""Presentation: rule results → CDS Hooks cards, apart from the reasoning that produced them.

``render`` assembles a card; ``phrases`` fills the wording's placeholders with the patient's values;
``evidence_lines`` and ``lab_display`` write the evidence; ``suggestions`` and ``switch_order`` build the
draft orders; ``record_text`` escapes text from the record. All wording is in ``knowledge/cards/``.
"""
