"""``python -m cds_hooks`` and the ``cds-hooks`` console script; the command line is in ``cli/main.py``."""

from __future__ import annotations

import sys

from cds_hooks.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
