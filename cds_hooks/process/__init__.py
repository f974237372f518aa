"""Process-wide settings: configuration from CDS_HOOKS_* variables, logging, garbage-collector tuning.
The bottom layer: imports nothing else from the package."""
