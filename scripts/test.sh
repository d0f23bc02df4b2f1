#!/usr/bin/env bash
# The one test command: formatting, lints, and every test in the workspace.
# `.ci/run` calls exactly this. It installs what it needs itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build needs (SQLCipher links the system OpenSSL).
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}
ensure_apt pkg-config libssl-dev

echo "== toolchain"
cargo --version

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --features occ-core/bench-internals -- -D warnings

echo "== cargo test (workspace)"
cargo test --workspace

echo "== all tests passed"
