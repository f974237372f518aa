"""The per-worker runtime the blueprints share, reached through the Flask app (no import of the factory).

``create_app`` stores a :class:`Runtime` in ``app.extensions["cds_hooks"]``; a blueprint asks
:func:`runtime` for it while handling a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.hooks.pipeline import Pipeline
from cds_hooks.hooks.registry import ServiceDefinition
from cds_hooks.process.config import Settings
from cds_hooks.store.database import Store
from cds_hooks.store.recorder import Recorder

EXTENSION = "cds_hooks"


@dataclass
class Runtime:
    """Long-lived objects shared by all requests of one worker process."""

    settings: Settings
    pipeline: Pipeline
    store: Store
    recorder: Recorder  # card log and audit trail, written off the request path

    @property
    def knowledge(self) -> Knowledge:
        return self.pipeline.knowledge

    @property
    def services(self) -> dict[str, ServiceDefinition]:
        return self.pipeline.services


def runtime() -> Runtime:
    """The runtime of the app handling the current request."""
    return current_app.extensions[EXTENSION]
