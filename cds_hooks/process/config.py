"""Settings, read once from ``CDS_HOOKS_*`` environment variables at start-up.

Every setting has an embedded default so ``cds-hooks serve`` runs on a fresh machine with no
configuration and no database server. A bad value fails start-up with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

PREFIX = "CDS_HOOKS_"


class ConfigError(ValueError):
    """A ``CDS_HOOKS_*`` variable has a value the service cannot use."""


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "cds-hooks"


@dataclass(frozen=True)
class Settings:
    """All run-time configuration. Field ``foo_bar`` is read from ``CDS_HOOKS_FOO_BAR``."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Directory for the embedded SQLite database; created on first start.
    data_dir: Path = field(default_factory=_default_data_dir)
    # Any SQLAlchemy URL; empty means sqlite:///<data_dir>/cds-hooks.sqlite3.
    database_url: str = ""
    # Comma-separated allowed CORS origins; "*" (any) is for development only.
    allowed_origins: str = "*"
    # Largest accepted request body, in bytes (413 above it).
    max_body_bytes: int = 5 * 1024 * 1024
    # FHIR fallback: connect and read timeouts (seconds), pages followed per prefetch key,
    # concurrent fetches per request.
    fhir_connect_timeout: float = 3.05
    fhir_read_timeout: float = 10.0
    fhir_max_pages: int = 20
    fhir_max_workers: int = 8  # the service's eight prefetch keys, all fetched at once when all are missing
    fhir_retries: int = 1
    # One FHIR answer: total time from request to last byte, and largest size accepted.
    fhir_total_timeout: float = 20.0
    fhir_max_response_bytes: int = 50 * 1024 * 1024
    # Most resources one request may bring (prefetch plus fetched) before it is refused (413).
    max_resources: int = 50_000
    # Discovery templates with `date=ge{{today() - N days}}` on the Observation searches (a token not
    # every CDS Client fills); what the service fetches itself is bounded either way.
    prefetch_date_bound: bool = False
    # Chart-session reuse (cds_hooks/hooks/evaluation_cache.py): records whose facts and findings a
    # worker keeps for the next call with the same content (0: off), and the memory they may take (MiB).
    evaluation_cache_entries: int = 128
    evaluation_cache_mb: int = 64
    # Evaluate a synthetic record through every hook when a worker starts, so its first real request
    # is not a cold one (imports, classifier memos, FHIR model classes).
    warm_up: bool = True
    # Logging: "text" or "json"; level name.
    log_format: str = "text"
    log_level: str = "INFO"
    # Folder with a reviewed copy of the clinical knowledge; empty means the packaged copy.
    knowledge_dir: str = ""
    # A site's ConceptMap (local code → LOINC/RxNorm/ATC) applied to the value sets when the knowledge is
    # loaded (cds_hooks/clinical/site_codes.py; `cds-hooks survey` drafts one); empty means none.
    site_concept_map: str = ""
    # Public base URL of the service (behind a reverse proxy), used to build absolute URLs.
    public_base_url: str = ""
    # "development" or "production": production requires https FHIR servers and an allowlist.
    mode: str = "development"
    # FHIR fallback targets (SSRF protection, docs/security.md): comma-separated URL prefixes (empty: any
    # host in development, none in production), plain http in production, loopback/private addresses.
    fhir_allowlist: str = ""
    fhir_allow_http: bool = False
    fhir_allow_private: bool = False
    # Serve GET /cds-services/{id}/stats (feedback analytics, no patient data); off by default.
    stats_endpoint: bool = False
    # JWT verification of CDS Clients (X3–X7): "off" (development) or "required". See docs/security.md.
    jwt: str = "off"
    # Path of the trusted-issuers JSON file (required when jwt = "required").
    trusted_issuers: str = ""
    # Comma-separated accepted JWS algorithms; only asymmetric ones are ever used (X5).
    jwt_algorithms: str = "ES384,RS384"
    # Tolerated clock difference for exp/iat/nbf, in seconds.
    jwt_clock_skew: int = 60
    # Comma-separated accepted `tenant` claim values; empty means the claim is not checked.
    jwt_tenants: str = ""
    # JWK Sets fetched from allowlisted `jku` URLs: cache lifetime and fetch timeout, in seconds.
    jku_cache_ttl: int = 600
    jku_timeout: float = 5.0
    # Key of the patient pseudonyms (HMAC-SHA256) kept with logged cards and audit events; empty: a
    # random key generated into data_dir/pseudonym.key. Instances sharing a database must share it.
    pseudonym_key: str = field(default="", repr=False)
    # Audit trail of service and feedback calls: "db", "file:<path>", "stdout" or "off"; days that
    # audit rows are kept in the database (0 keeps them all).
    audit: str = "db"
    audit_retention_days: int = 365
    # Days that the card log (cards shown, by patient pseudonym) and the feedback on it are kept in the
    # database (0 keeps them all). Longer than the longest snooze of the knowledge (checked at start):
    # a snooze rests on the feedback and its card.
    card_log_retention_days: int = 0
    # GET /metrics in the Prometheus format: off unless true; when a token is set, scrapers must send it
    # as a bearer token (required in production mode).
    metrics: bool = False
    metrics_token: str = field(default="", repr=False)
    # OpenTelemetry tracing of requests (needs the `otel` extra; exporter set by the OTEL_* variables).
    otel: bool = False
    # gunicorn's control socket for `serve`: "auto" (in the data directory, one per port), "off", or a path.
    control_socket: str = "auto"
    # The SMART app (/app/, docs/timeline.md): the client id registered with the EHR (public, PKCE S256).
    app_client_id: str = "immune-ir-timeline"
    # The rule dashboard (/dashboard) is served only when this token is set (Bearer header or sign-in form).
    admin_token: str = ""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'cds-hooks.sqlite3'}"

    @property
    def origins(self) -> list[str] | str:
        value = self.allowed_origins.strip()
        if value in ("", "*"):
            return "*"
        return [o.strip() for o in value.split(",") if o.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from the environment; ``overrides`` (already typed) win over it."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, f.type)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if not (0 < self.port < 65536):
            raise ConfigError(f"{PREFIX}PORT must be between 1 and 65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"{PREFIX}MAX_BODY_BYTES must be at least 1024, got {self.max_body_bytes}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"{PREFIX}LOG_FORMAT must be 'text' or 'json', got {self.log_format!r}")
        for name in ("fhir_connect_timeout", "fhir_read_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be positive")
        if self.fhir_total_timeout <= 0 or self.fhir_max_response_bytes < 1024 or self.max_resources < 1:
            raise ConfigError(
                f"{PREFIX}FHIR_TOTAL_TIMEOUT, {PREFIX}FHIR_MAX_RESPONSE_BYTES and {PREFIX}MAX_RESOURCES "
                "must be positive (response bytes at least 1024)"
            )
        if self.evaluation_cache_entries < 0 or self.evaluation_cache_mb < 0:
            raise ConfigError(
                f"{PREFIX}EVALUATION_CACHE_ENTRIES and {PREFIX}EVALUATION_CACHE_MB must not be negative"
            )
        for name in ("fhir_max_pages", "fhir_max_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{PREFIX}{name.upper()} must be at least 1")
        if self.mode not in ("development", "production"):
            raise ConfigError(f"{PREFIX}MODE must be 'development' or 'production', got {self.mode!r}")
        if self.jwt not in ("off", "required"):
            raise ConfigError(f"{PREFIX}JWT must be 'off' or 'required', got {self.jwt!r}")
        if self.jwt == "required" and not str(self.trusted_issuers).strip():
            raise ConfigError(
                f"{PREFIX}JWT=required needs {PREFIX}TRUSTED_ISSUERS: the path of a JSON file listing the "
                "trusted issuers and their keys (see docs/security.md)"
            )
        if self.jwt_clock_skew < 0:
            raise ConfigError(f"{PREFIX}JWT_CLOCK_SKEW must not be negative")
        if self.jku_cache_ttl < 1:
            raise ConfigError(f"{PREFIX}JKU_CACHE_TTL must be at least 1 second")
        if self.jku_timeout <= 0:
            raise ConfigError(f"{PREFIX}JKU_TIMEOUT must be positive")
        if self.audit not in ("db", "stdout", "off") and not (
            self.audit.startswith("file:") and self.audit[5:].strip()
        ):
            raise ConfigError(f"{PREFIX}AUDIT must be db, file:<path>, stdout or off, got {self.audit!r}")
        for name in ("audit_retention_days", "card_log_retention_days"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must not be negative (0 keeps every row)")
        if self.metrics and self.mode == "production" and not self.metrics_token:
            raise ConfigError(
                f"{PREFIX}METRICS=true in production mode needs {PREFIX}METRICS_TOKEN (the bearer token "
                "Prometheus sends)"
            )
        if not self.control_socket.strip():
            raise ConfigError(f"{PREFIX}CONTROL_SOCKET must be auto, off or a path")


def _convert(name: str, raw: str, type_name: object) -> object:
    kind = str(type_name)
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw).expanduser()
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    return raw
