"""The pure clinical core: knowledge, units, wording, facts, findings, rules, order judgement, cards.
Imports only the FHIR JSON/date helpers and the resource index; no Flask, requests, SQLAlchemy or gunicorn."""
