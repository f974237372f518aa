"""Regenerate ``examples/``: ``python -m scripts.examples [--today YYYY-MM-DD] [--out DIR] [--clean]``."""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import date
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .write import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(PACKAGE_DOC or "").split("\n\n")[0])
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=date.today(),
        help="anchor date every date is relative to (default: today)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "examples",
        help="output folder (default: examples/ of this checkout)",
    )
    parser.add_argument("--clean", action="store_true", help="remove the output folder first")
    args = parser.parse_args(argv)
    if args.clean and args.out.exists():
        shutil.rmtree(args.out)
    manifest = generate(args.today, args.out)
    for item in manifest["examples"]:
        rules = ", ".join(item["expected_rules"]) or "(no card)"
        print(f"{item['file']:<52} {item['resources']:>4} resources  {rules}")
    print(f"{len(manifest['examples'])} examples written to {args.out} (anchor {manifest['anchor_date']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
