"""FHIR on the wire: the HTTP client, the target policy (SSRF), defensive JSON access, dates, JSON codec and
the resource index. May import process only."""
