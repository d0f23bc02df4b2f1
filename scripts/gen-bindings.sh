#!/usr/bin/env bash
# Builds the occ-ffi library and generates its Kotlin and Swift bindings in
# library mode (from the built cdylib) into build/bindings/ (not committed):
#   build/bindings/org/occ/occ.kt            Kotlin, package org.occ
#   build/bindings/Occ.swift                 Swift, module Occ
#   build/bindings/OccFFI.h, OccFFI.modulemap  the C header and module map
# Usage: scripts/gen-bindings.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
flags=()
if [ "${1:-}" = "--release" ]; then
  profile=release
  flags=(--release)
fi

# One cargo run builds the library and the generator together (same uniffi).
cargo build "${flags[@]}" -p occ-ffi --features cli --lib --bin uniffi-bindgen
lib="target/$profile/libocc_ffi.so"
[ -f "$lib" ] || lib="target/$profile/libocc_ffi.dylib"

rm -rf build/bindings
mkdir -p build/bindings
"target/$profile/uniffi-bindgen" generate "$lib" \
  --language kotlin --language swift --no-format --out-dir build/bindings
echo "bindings generated from $lib into build/bindings"
