#!/usr/bin/env bash
# Builds the Android app: libocc_ffi.so for arm64-v8a, armeabi-v7a and x86_64
# (SQLCipher with a vendored, statically linked OpenSSL), the Kotlin bindings,
# then the APK. Needs the Android SDK and NDK (ANDROID_HOME, ANDROID_NDK_HOME
# or ANDROID_NDK_ROOT) and a JDK 17; installs cargo-ndk and the Rust targets.
#
# Usage: scripts/build-android.sh [debug|release]     (default: debug)
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-debug}

: "${ANDROID_HOME:?set ANDROID_HOME to the Android SDK}"
if [ -z "${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}" ]; then
  echo "set ANDROID_NDK_HOME to an installed NDK (sdkmanager --install 'ndk;27.2.12479018')" >&2
  exit 1
fi

command -v cargo-ndk >/dev/null 2>&1 || cargo install --locked cargo-ndk
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android

out=android/ffi/build/generated/occ
rm -rf "$out"
mkdir -p "$out/jniLibs" "$out/kotlin/org/occ"

echo "== libocc_ffi.so for three ABIs"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -P 26 -o "$out/jniLibs" \
  build --release -p occ-ffi --features vendored-openssl

echo "== Kotlin bindings"
scripts/gen-bindings.sh --release
cp build/bindings/org/occ/occ.kt "$out/kotlin/org/occ/"

echo "== APK ($variant)"
cd android
if [ -x ./gradlew ]; then
  gradle=./gradlew
else
  command -v gradle >/dev/null 2>&1 || { echo "install Gradle 8.9+ or run 'gradle wrapper' once in android/" >&2; exit 1; }
  gradle=gradle
fi
task=assembleDebug
[ "$variant" = "release" ] && task=assembleRelease
$gradle ":app:$task"
find app/build/outputs/apk -name '*.apk' -print
