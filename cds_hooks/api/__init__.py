"""HTTP layer: Flask blueprints (discovery, services, feedback, stats, health, sources), body decoding,
error answers, the OpenAPI document. May import hooks, security, store and below; never the factory."""
