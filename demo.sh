#!/usr/bin/env bash
# Builds Postcopy for OSGi (tests skipped), starts its Karaf distribution in the background, runs
# `postcopy:demo` through bin/client (a real local migration with workloads on both sides, every page
# verified), prints its output, and stops the distribution again.
#
#   ./demo.sh              # 256M, hybrid
#   ./demo.sh 1G           # another size
#   DEMO_ARGS="--mode postcopy 128M" ./demo.sh
#   SKIP_BUILD=1 ./demo.sh # reuse karaf-distribution/target/assembly
set -euo pipefail
cd "$(dirname "$0")"
ARGS="${DEMO_ARGS:-${1:-256M}}"
KARAF=karaf-distribution/target/assembly

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "== building (mvn -B -q -DskipTests install)"
  mvn -B -q -DskipTests install
fi

if "$KARAF/bin/status" >/dev/null 2>&1; then
  echo "the distribution in $KARAF runs already; stop it first ($KARAF/bin/stop)" >&2
  exit 1
fi

client() {
  # bin/postcopy-client keeps the client's stdin open until the command ends; timeout bounds a command that hangs
  local rc=0
  timeout "${2:-60}" "$KARAF/bin/postcopy-client" "$1" </dev/null 2>&1 | grep -v '^client: JAVA_HOME not set' || rc=$?
  return $rc
}

echo "== starting $KARAF"
"$KARAF/bin/start"
trap 'echo "== stopping"; "$KARAF/bin/stop" 2>&1 | grep -v "JAVA_HOME not set" || true' EXIT

for _ in $(seq 1 90); do
  if client "postcopy:status" 20 | grep -q '^ID '; then break; fi
  sleep 2
done

echo "== karaf@root()> postcopy:demo $ARGS"
out=$(client "postcopy:demo $ARGS" 900)
echo "$out"
echo "$out" | grep -q ', 0 mismatched' || exit 1
