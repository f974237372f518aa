"""Patient facts built from raw FHIR resources: labs, medications, conditions, dosage.
Part of the clinical core (same import rules)."""
