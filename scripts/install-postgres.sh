#!/usr/bin/env bash
# Install a PostgreSQL server (Debian package) for the PostgreSQL variants of the tests.
#
# The tests never use a system server: tests/postgres_plugin.py finds `initdb`/`pg_ctl` (PATH or
# /usr/lib/postgresql/*/bin), creates a throwaway cluster in a temporary directory, runs it on a free
# loopback port and stops it at the end of the session. This script only makes the binaries available.
#
# Idempotent, and never fails the build: when the binaries are already there it does nothing; when
# it cannot install them (not root, no apt-get, no network) it says so and exits 0 — the PostgreSQL
# tests are then skipped with a visible reason.
set -uo pipefail

find_initdb() {
  if command -v initdb >/dev/null 2>&1; then
    command -v initdb
    return
  fi
  ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}

found="$(find_initdb)"
if [ -n "$found" ]; then
  echo "PostgreSQL server binaries present: $("$found" --version 2>/dev/null || echo "$found")"
  exit 0
fi

hint="install them with 'apt-get install postgresql' (as root) to run the PostgreSQL tests; they are skipped until then"
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL server binaries (initdb, pg_ctl) not found and not running as root: $hint"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server binaries (initdb, pg_ctl) not found and no apt-get here: $hint"
  exit 0
fi

echo "installing PostgreSQL from the Debian packages (apt-get install postgresql)"
# No system cluster: the tests create their own. Without this, the package creates and may start one.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
if timeout 300 apt-get update -qq &&
  timeout 600 apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold postgresql >/dev/null; then
  found="$(find_initdb)"
fi
if [ -n "$found" ]; then
  echo "PostgreSQL installed: $("$found" --version 2>/dev/null || echo "$found")"
else
  echo "could not install PostgreSQL (see the apt-get messages above): the PostgreSQL tests will be skipped"
fi
exit 0
