#!/usr/bin/env python3
"""Rewrite the generated samples in README.md and docs/ (``<!-- sample:begin NAME -->`` blocks) from the
live service: run it after a change of card wording, then review the diff. tests/docs/test_docs_samples.py
fails while a block differs from what the service answers. The demo's output (docs/demo.md) needs the
demo running: CDS_HOOKS_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/e2e/test_demo.py -k SIGINT

    .venv/bin/python scripts/update_docs_samples.py [NAME ...]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
logging.disable(logging.WARNING)

from tests.docs.samples import RENDERERS, update  # noqa: E402


def main(argv: list[str]) -> int:
    unknown = [n for n in argv if n not in RENDERERS]
    if unknown:
        print(f"unknown sample(s): {', '.join(unknown)}; known: {', '.join(RENDERERS)}", file=sys.stderr)
        return 2
    changed = update(argv or None)
    print("rewritten: " + (", ".join(changed) if changed else "nothing (every sample is up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
