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
    fhir_max_workers: int = 6
    fhir_retries: int = 1
    # Logging: "text" or "json"; level name.
    log_format: str = "text"
    log_level: str = "INFO"
    # Folder with a reviewed copy of the clinical knowledge; empty means the packaged copy.
    knowledge_dir: str = ""
    # Public base URL of the service (behind a reverse proxy), used to build absolute URLs.
    public_base_url: str = ""

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
        for name in ("fhir_max_pages", "fhir_max_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{PREFIX}{name.upper()} must be at least 1")


def _convert(name: str, raw: str, type_name: object) -> object:
    kind = str(type_name)
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
