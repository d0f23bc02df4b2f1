#!/usr/bin/env bash
# The one test command: formatting, lints, and every test in the workspace.
# `.ci/run` calls exactly this. It installs what it needs itself.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain"
cargo --version

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test (workspace)"
cargo test --workspace

echo "== all tests passed"
