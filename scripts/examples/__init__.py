"""Generate the example patient population in ``examples/`` (deterministic, seeded).

Every example is one FHIR R4 **transaction** Bundle of ``PUT Type/id`` entries (ids stable and prefixed
per patient: ``ex07``, ``ex07-obs-v1-003``, ...) plus a line in ``examples/manifest.json`` with the rule
ids the patient must fire.

Each record has two layers:

* **Background** — years of unrelated history from ``carebundle`` (PyPI; pure Python, seeded): one
  carebundle record per yearly visit (vitals, CMP, CBC, lipids, HbA1c, albuminuria, problem list,
  prescriptions such as statins and ACE inhibitors), merged into the patient with ids and references
  rewritten to the patient's stable ids. Older visits' prescriptions are kept as ``completed``.
* **The situation** — written in :mod:`.patients`: animal insulin, insulin and receptor antibodies,
  autoimmune disease, ataxia-telangiectasia, glucocorticoids, non-immune causes, in the data
  variants real EHRs send (MedicationStatement and MedicationRequest, medicationReference to a
  Medication on the server or a contained one, mg/dL and mmol/L, pmol/L insulin, IFCC HbA1c,
  valueString / valueCodeableConcept antibody results, local lab codes with text only, pending
  results, ...).

Dates: every date is computed relative to ``--today`` (the *anchor*, default: today) and the anchor is
written to ``manifest.json`` as ``anchor_date``. Loaders (``cds_hooks.cli.demo.load_examples``) shift every
date by (day of loading − anchor) so the look-back windows hold whenever the examples are loaded. No
situation date is closer than 3 days to a window edge, so a one-day difference between local and UTC
dates never matters.

The modules: :mod:`.chart` (a patient's chart, built with :mod:`cds_hooks.fhir.builders`),
:mod:`.patients` (the situations), :mod:`.background` (carebundle's history) and :mod:`.write` (the
Bundles and ``manifest.json``).

carebundle is a test/dev dependency only: the service and its tests use the committed JSON files as
they are (one test regenerates them to check they still match). Regenerate with::

    pip install 'carebundle==0.5.0'
    python -m scripts.examples            # writes examples/ (anchor = today)
    python -m scripts.examples --today 2026-11-27 --out /tmp/ex   # reproduce a given anchor
"""
