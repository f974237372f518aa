"""Patient facts: what the rules read, normalised from FHIR R4 resources."""
