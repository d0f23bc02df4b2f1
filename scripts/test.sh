#!/usr/bin/env bash
# The one test command: formatting, lints, dependency policy, and every test
# in the workspace. `.ci/run` calls exactly this. It installs what it needs.
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
# `age` (and `age-keygen`): the export tests open encrypted exports with the
# standard tool, as a records officer would.
ensure_apt pkg-config libssl-dev age

# Cargo tools from crates.io.
ensure_cargo_tool() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "== installing $1"
    cargo install --locked "$1"
  }
}
ensure_cargo_tool cargo-deny

echo "== toolchain"
cargo --version

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors, workspace lint table)"
cargo clippy --workspace --all-targets --features occ-core/bench-internals -- -D warnings

echo "== cargo doc (crate and module docs build, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

echo "== cargo deny (licenses, one version of each crate, sources)"
cargo deny --offline check licenses bans sources
echo "== cargo deny (advisories)"
if timeout 120 cargo deny fetch db >/dev/null 2>&1 || ls "$HOME"/.cargo/advisory-dbs/*/crates >/dev/null 2>&1; then
  cargo deny --offline check advisories
else
  echo "   the RustSec advisory database cannot be fetched from here; advisories not checked"
fi

echo "== cargo test (workspace)"
cargo test --workspace

echo "== schemathesis: the relay against its OpenAPI description"
scripts/schemathesis.sh

echo "== Kotlin: the bindings and the app logic on the JVM"
scripts/test-kotlin.sh

echo "== all tests passed"
