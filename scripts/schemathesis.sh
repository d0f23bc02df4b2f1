#!/usr/bin/env bash
# Property-based API testing of the relay: schemathesis (from PyPI, pinned,
# in its own virtualenv under build/) generates requests from the relay's
# OpenAPI 3.1 description and checks every answer against it — no 5xx,
# status codes, content types, bodies and headers as described — on a dev
# relay over TLS, authenticated routes included (the test registers a
# device and passes its bearer token). OCC_SCHEMATHESIS_EXAMPLES sets the
# examples per operation (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
VENV=build/schemathesis-venv
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
  echo "== installing schemathesis $VERSION (PyPI) into $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

OCC_SCHEMATHESIS="$PWD/$VENV/bin/schemathesis" \
  cargo test -p occ-e2e --test openapi -- --ignored --nocapture
