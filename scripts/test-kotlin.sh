#!/usr/bin/env bash
# Kotlin tests of the bindings and of the app logic, on the JVM, against a
# real `occ-relay --dev` on loopback, and the check that the Swift code
# (iOS app, extension, app logic, Swift tests) only uses binding symbols
# that exist. Called by scripts/test.sh (and so by CI). Installs what it needs when missing: a JDK and libjna-java (apt), the
# Kotlin compiler with its coroutines and kotlin-test jars (npm,
# kotlin-compiler@2.4.20, into build/tools).
#
# Usage: scripts/test-kotlin.sh [--bench]   (--bench also runs the FFI bench)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}
command -v java >/dev/null 2>&1 || { echo "== installing a JDK"; apt_install openjdk-17-jdk-headless; }
[ -f /usr/share/java/jna.jar ] || { echo "== installing libjna-java"; apt_install libjna-java; }
kotlin_home="$root/build/tools/node_modules/kotlin-compiler"
if [ ! -x "$kotlin_home/bin/kotlinc" ]; then
  echo "== installing kotlin-compiler@2.4.20 (npm)"
  mkdir -p build/tools
  npm install --prefix build/tools --no-audit --no-fund --silent kotlin-compiler@2.4.20
fi
kotlinc="$kotlin_home/bin/kotlinc"
lib="$kotlin_home/lib"
jna=/usr/share/java/jna.jar
deps="$jna:$lib/kotlinx-coroutines-core-jvm.jar"

echo "== bindings"
scripts/gen-bindings.sh
for f in build/bindings/org/occ/occ.kt build/bindings/Occ.swift build/bindings/OccFFI.h build/bindings/OccFFI.modulemap; do
  [ -s "$f" ] || { echo "missing generated file $f"; exit 1; }
done
echo "== Swift: every binding symbol the iOS code uses exists"
python3 scripts/check-swift-api.py

echo "== relay"
cargo build -q -p occ-relay --bin occ-relay
work=$(mktemp -d)
relay_pid=""
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A push gateway for the tests (a JVM HTTPS server standing in for a
# UnifiedPush distributor's server): its certificate from a CA made here,
# which the relay trusts for push.
command -v openssl >/dev/null 2>&1 || { echo "== installing openssl"; apt_install openssl; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=occ-test-push-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$work/push-ca.key" -out "$work/push-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -keyout "$work/push.key" -out "$work/push.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/push.ext"
openssl x509 -req -in "$work/push.csr" -CA "$work/push-ca.pem" -CAkey "$work/push-ca.key" -CAcreateserial \
  -days 2 -extfile "$work/push.ext" -out "$work/push.pem" 2>/dev/null
openssl pkcs12 -export -in "$work/push.pem" -inkey "$work/push.key" -passout pass:occtest -out "$work/push.p12"
export OCC_PUSH_P12="$work/push.p12"
target/debug/occ-relay --dev --data "$work/relay" --listen 127.0.0.1:0 --purge-interval 1 \
  --push-ca "$work/push-ca.pem" \
  >"$work/relay.out" 2>"$work/relay.err" &
relay_pid=$!
for _ in $(seq 1 100); do
  grep -q "^ca: " "$work/relay.out" 2>/dev/null && grep -q "listening on" "$work/relay.err" && break
  sleep 0.1
done
addr=$(sed -n 's/^occ-relay listening on //p' "$work/relay.err")
export OCC_RELAY_URL="https://localhost:${addr##*:}"
export OCC_RELAY_PIN=$(sed -n 's/^pin: //p' "$work/relay.out")
export OCC_RELAY_CA=$(sed -n 's/^ca: //p' "$work/relay.out")
[ -n "$OCC_RELAY_PIN" ] && [ -n "$OCC_RELAY_CA" ] || { cat "$work/relay.err"; echo "the relay did not start"; exit 1; }
echo "   $OCC_RELAY_URL $OCC_RELAY_PIN"

echo "== compiling the Kotlin bindings and layer"
mkdir -p build/kotlin
"$kotlinc" -nowarn -d build/kotlin/occ.jar -classpath "$deps" \
  build/bindings/org/occ/occ.kt $(find bindings/kotlin -name '*.kt')
echo "== compiling the app logic and the tests"
sources=$(find tests/kotlin android/logic/src -name '*.kt' 2>/dev/null || true)
"$kotlinc" -nowarn -d build/kotlin/tests.jar \
  -classpath "build/kotlin/occ.jar:$deps:$lib/kotlin-test.jar" $sources

run() {
  java ${JAVA_OPTS:-} -Djna.library.path="$root/target/debug" \
    -cp "build/kotlin/tests.jar:build/kotlin/occ.jar:$deps:$lib/kotlin-stdlib.jar:$lib/kotlin-test.jar" "$@"
}
echo "== Kotlin tests"
run org.occ.tests.ClientTestsKt
if [ -d android/logic ]; then
  run org.occ.app.tests.LogicTestsKt
fi

echo "== a native library that does not match its bindings"
# The same bindings with one API checksum changed, as if generated from
# another version of the library: loading must fail clearly.
mkdir -p build/kotlin/mismatch
sed -E '0,/\) != ([0-9]+)\) \{/s//) != 1\1) {/' build/bindings/org/occ/occ.kt >build/kotlin/mismatch/occ.kt
cmp -s build/bindings/org/occ/occ.kt build/kotlin/mismatch/occ.kt && { echo "the checksum was not altered"; exit 1; }
"$kotlinc" -nowarn -d build/kotlin/mismatch.jar -classpath "$deps" \
  build/kotlin/mismatch/occ.kt $(find bindings/kotlin tests/kotlin-mismatch -name '*.kt')
java -Djna.library.path="$root/target/debug" \
  -cp "build/kotlin/mismatch.jar:$deps:$lib/kotlin-stdlib.jar" org.occ.mismatch.MismatchKt
if [ "${1:-}" = "--bench" ]; then
  echo "== FFI bench (heap capped, so RSS shows native memory)"
  JAVA_OPTS="-Xmx64m" run org.occ.tests.BenchKt
fi
echo "== Kotlin tests passed"
