"""Run the app under gunicorn from the ``serve`` command, with the same settings as production."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from .config import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from .app import create_app

        return create_app(self.settings)


def run_gunicorn(settings: Settings, workers: int = 2, threads: int = 4) -> None:
    """gthread workers: the FHIR fallback waits on the network, so threads keep a worker busy usefully."""
    _Gunicorn(
        settings,
        {
            "bind": f"{settings.host}:{settings.port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 60,
            "accesslog": None,
            "limit_request_line": 8190,
        },
    ).run()
