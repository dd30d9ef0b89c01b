#!/usr/bin/env bash
# Two builds of idpbuilder push, side by side in one run: each round pushes the same image with
# BIN_A, then BIN_B, each into a fresh TLS + htpasswd registry, and prints medians of wall time,
# client CPU and peak RSS. For "did this change make the push slower?" (issue 10: the
# POST/PATCH/PUT flow against the old body-on-PUT flow). Measures; asserts nothing.
#
# usage: scripts/bench-compare.sh BIN_A BIN_B   (ROUNDS=5, MIB=1024, LAYERS=8)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 BIN_A BIN_B" >&2; exit 2; }
BIN_A=$1 BIN_B=$2
ROUNDS=${ROUNDS:-5} MIB=${MIB:-1024} LAYERS=${LAYERS:-8}
PASSWORD=bench-$RANDOM-$RANDOM
WORK=$(mktemp -d /tmp/idpbuilder-compare.XXXX)
REG_PID=
cleanup() { [[ -n $REG_PID ]] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

fresh_registry() {
  [[ -n $REG_PID ]] && { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; }
  rm -rf "$WORK/reg"
  eval "$(echo "$PASSWORD" | "$ROOT/scripts/start-registry.sh" "$WORK/reg" giteaadmin)"
}

push_with() {
  local bin=$1 name=$2
  fresh_registry
  echo "$PASSWORD" | /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$bin" push -q \
    --ca-file "$REG_CA_FILE" -u giteaadmin --password-stdin "$WORK/image" \
    "$REG_HOST/giteaadmin/bench:1.0" >/dev/null
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$WORK/time" >>"$WORK/$name"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { awk -v c="$2" '{print $c}' "$WORK/$1" | median; }

python3 "$ROOT/scripts/make-image.py" "$WORK/image" "$MIB" "$LAYERS" >/dev/null
: >"$WORK/a"; : >"$WORK/b"
for round in $(seq "$ROUNDS"); do
  echo "==> round $round/$ROUNDS" >&2
  push_with "$BIN_A" a
  push_with "$BIN_B" b
done
echo "| build | wall (s) | client CPU (s) | peak RSS (MiB) |"
echo "|---|---|---|---|"
for side in a b; do
  bin=$([[ $side == a ]] && echo "$BIN_A" || echo "$BIN_B")
  rss=$(awk -v k="$(col $side 3)" 'BEGIN {printf "%.1f", k / 1024}')
  echo "| $bin | $(col $side 1) | $(col $side 2) | $rss |"
done
