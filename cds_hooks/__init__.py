"""CDS Hooks 2.0 service for immune-mediated insulin resistance."""

__version__ = "0.1.0"
