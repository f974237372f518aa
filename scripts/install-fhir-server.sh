#!/usr/bin/env bash
# Install the FHIR R4 test server (sekmet-fhir) into its OWN virtualenv.
#
# sekmet-fhir pins FastAPI, pydantic and fhir.resources versions that must never leak into the
# service's environment, so it lives in a separate venv: ${CDS_HOOKS_FHIR_VENV:-.venv-fhir}
# (relative paths are taken relative to the repository root). Idempotent: does nothing when the
# pinned version is already installed there.
set -euo pipefail

SEKMET_VERSION="0.1.1"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CDS_HOOKS_FHIR_VENV:-.venv-fhir}"
case "$venv" in
  /*) ;;
  *) venv="$repo_root/$venv" ;;
esac
python="${CDS_HOOKS_FHIR_PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/sekmet" ]; then
  installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sekmet-fhir"))' 2>/dev/null || true)"
  if [ "$installed" = "$SEKMET_VERSION" ]; then
    echo "sekmet-fhir $SEKMET_VERSION already installed in $venv"
    exit 0
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "sekmet-fhir==$SEKMET_VERSION"
echo "sekmet-fhir $SEKMET_VERSION installed in $venv ($venv/bin/sekmet)"
