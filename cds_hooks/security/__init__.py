"""Verification of CDS Clients: JWT checks, trusted issuers, the shared replay cache.
May import store, hooks (OperationOutcome), fhir and process; never api or the factory."""
