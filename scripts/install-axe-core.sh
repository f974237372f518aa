#!/usr/bin/env bash
# axe-core (the accessibility engine the page tests inject into headless Chromium), from npm into
# build/axe-core/. Idempotent; the tests run it themselves when the bundle is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
AXE_VERSION=${AXE_VERSION:-4.10.3}
if [ -f build/axe-core/node_modules/axe-core/axe.min.js ]; then
    exit 0
fi
mkdir -p build/axe-core
npm install --silent --no-audit --no-fund --prefix build/axe-core "axe-core@${AXE_VERSION}"
