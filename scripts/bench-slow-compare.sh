#!/usr/bin/env bash
# Compares idpbuilder binaries over the bench's slow link (examples/slow_link: SLOW_RTT_MS added
# to every round trip, SLOW_MBIT Mbit/s shared each way) into a fresh TLS + htpasswd
# distribution registry each push, the binaries alternating within each round so that they
# share the machine's state. Prints the medians of wall time and peak RSS per binary and size.
# Measures; asserts nothing.
#
# usage: BINS="before=/path/a after=/path/b" SLOW_SIZES="25:100 100:4" ROUNDS=3 \
#          scripts/bench-slow-compare.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SLOW_SIZES=${SLOW_SIZES-"25:100 100:4"}
SLOW_RTT_MS=${SLOW_RTT_MS:-50}; SLOW_MBIT=${SLOW_MBIT:-200}
: "${BINS:?BINS=\"name=path ...\"}"
PASSWORD=bench-$RANDOM-$RANDOM
WORK=$(mktemp -d /tmp/idpbuilder-slowcmp.XXXX)
REG_PID=; LINK_PID=
cleanup() {
  [[ -n $LINK_PID ]] && kill "$LINK_PID" 2>/dev/null
  [[ -n $REG_PID ]] && kill "$REG_PID" 2>/dev/null
  wait 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release --quiet --example slow_link)
LINK_BIN=$ROOT/target/release/examples/slow_link

fresh_registry_through_link() {
  [[ -n $LINK_PID ]] && { kill "$LINK_PID" 2>/dev/null; wait "$LINK_PID" 2>/dev/null || true; }
  [[ -n $REG_PID ]] && { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; }
  rm -rf "$WORK/reg"
  eval "$(echo "$PASSWORD" | "$ROOT/scripts/start-registry.sh" "$WORK/reg" giteaadmin)"
  "$LINK_BIN" 127.0.0.1:0 "$REG_HOST" "$SLOW_RTT_MS" "$SLOW_MBIT" >"$WORK/link" &
  LINK_PID=$!
  for _ in $(seq 50); do [[ -s $WORK/link ]] && break; sleep 0.1; done
  LINK_HOST=$(head -1 "$WORK/link")
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }

for size in $SLOW_SIZES; do
  mib=${size%%:*}; layers=${size##*:}
  layout=$WORK/image-$mib-$layers
  python3 "$ROOT/scripts/make-image.py" "$layout" "$mib" "$layers" >/dev/null
  for round in $(seq "$ROUNDS"); do
    for entry in $BINS; do
      name=${entry%%=*}; bin=${entry#*=}
      fresh_registry_through_link
      echo "==> $mib MiB / $layers layers, round $round/$ROUNDS: $name" >&2
      echo "$PASSWORD" | /usr/bin/time -f "%e %M" -o "$WORK/time" "$bin" push -q \
        --ca-file "$REG_CA_FILE" -u giteaadmin --password-stdin \
        "$layout" "$LINK_HOST/giteaadmin/bench:1.0" >/dev/null
      cat "$WORK/time" >>"$WORK/$name-$mib-$layers"
      tr '\n' ' ' <"$WORK/time" >&2; echo >&2
    done
  done
  bytes=$(du -sb "$layout/blobs" | cut -f1)
  floor=$(awk -v b="$bytes" -v m="$SLOW_MBIT" 'BEGIN {printf "%.2f", b * 8 / (m * 1000000)}')
  for entry in $BINS; do
    name=${entry%%=*}
    f=$WORK/$name-$mib-$layers
    wall=$(cut -d' ' -f1 "$f" | median)
    rss=$(cut -d' ' -f2 "$f" | median | awk '{printf "%.1f", $1 / 1024}')
    all=$(cut -d' ' -f1 "$f" | tr '\n' ' ')
    echo "| $mib MiB / $layers layers | $name | $wall | $rss | $all| floor $floor |"
  done
  rm -rf "$layout"
done
