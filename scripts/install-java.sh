#!/usr/bin/env bash
# A Java runtime for Apache Spark (cds-hooks screen --bulk, the tests under tests/bulk): Java 17 or
# later. Installs Debian's openjdk-17-jre-headless when java is missing and this runs as root with apt;
# otherwise says why it skipped (the Spark tests then skip with that reason).
set -uo pipefail
if command -v java >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-java: no java found and cannot install it here (needs root and apt-get): the Spark tests will skip" >&2
    exit 0
fi
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; } >/dev/null; then
    echo "install-java: apt-get could not install openjdk-17-jre-headless: the Spark tests will skip" >&2
fi
exit 0
