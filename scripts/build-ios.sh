#!/usr/bin/env bash
# Builds OccFFI.xcframework (device + simulator slices, SQLCipher with a
# vendored OpenSSL) and the Swift bindings for the iOS package in ios/.
# macOS only, with Xcode 15+. Then: `cd ios && xcodegen` (brew install
# xcodegen) and open OccApp.xcodeproj, or use the package in another app.
# The bindings come from scripts/gen-swift.sh (the host build generates
# them; all slices are built from the same sources, so they match, which
# `ensureNativeLibrary()` checks at launch).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname)" = "Darwin" ] || { echo "build-ios.sh needs macOS with Xcode" >&2; exit 1; }

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
  cargo build --release -p occ-ffi --features vendored-openssl --target "$t"
done

echo "== Swift bindings (from the host build) and the XCFramework's headers"
scripts/gen-swift.sh --release

work=build/ios
rm -rf "$work/sim" ios/Frameworks/OccFFI.xcframework
mkdir -p "$work/sim"
lipo -create \
  target/aarch64-apple-ios-sim/release/libocc_ffi.a \
  target/x86_64-apple-ios/release/libocc_ffi.a \
  -output "$work/sim/libocc_ffi.a"
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libocc_ffi.a -headers "$work/headers" \
  -library "$work/sim/libocc_ffi.a" -headers "$work/headers" \
  -output ios/Frameworks/OccFFI.xcframework
echo "ios/Frameworks/OccFFI.xcframework and ios/Sources/Occ/Generated/Occ.swift are ready"
echo "Then: cd ios && xcodegen && open OccApp.xcodeproj (set your team; the App Group group.org.occ,"
echo "the keychain group and push must be enabled for the app and its extension identifiers)"
