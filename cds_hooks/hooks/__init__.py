"""The CDS Hooks protocol: request/feedback validation, the service registry, prefetch resolution and the
pipeline of one service call. May import clinical, fhir and process; never Flask, api or store."""
