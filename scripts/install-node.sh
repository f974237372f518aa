#!/usr/bin/env bash
# Node >= 22.18 for the Medplum client test (tests/clients/medplum: @medplum/core 5.x needs it) and that
# test's npm packages. Debian's nodejs is used when it is new enough; otherwise npm's `node` package (a
# registry package that ships the Node binary) is installed into build/tools/node. Prints nothing on
# success; the test reads build/tools/node-path. Idempotent; the test runs it itself when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_VERSION=${NODE_VERSION:-22.23.3}
TOOLS=build/tools/node
mkdir -p build/tools

new_enough() {  # node binary -> 0 when >= 22.18
    "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=18)?0:1)' \
        2>/dev/null
}

node_bin=""
if command -v node >/dev/null && new_enough "$(command -v node)"; then
    node_bin=$(command -v node)
elif [ -x "$TOOLS/node_modules/node/bin/node" ] && new_enough "$TOOLS/node_modules/node/bin/node"; then
    node_bin=$TOOLS/node_modules/node/bin/node
else
    command -v npm >/dev/null || { echo "install-node.sh: npm is not installed" >&2; exit 1; }
    mkdir -p "$TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" "node@${NODE_VERSION}" >&2
    node_bin=$TOOLS/node_modules/node/bin/node
    new_enough "$node_bin" || { echo "install-node.sh: npm's node package gave no usable Node >= 22.18" >&2; exit 1; }
fi
realpath "$node_bin" > build/tools/node-path

# The Medplum client test's packages, exactly as locked.
if [ ! -d tests/clients/medplum/node_modules/@medplum/core ]; then
    npm ci --silent --no-audit --no-fund --prefix tests/clients/medplum >&2
fi
