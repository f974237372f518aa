"""Thin HTTP layer: Flask blueprints that translate between HTTP and the evaluation core."""
