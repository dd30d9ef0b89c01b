#!/usr/bin/env bash
# Demo of `idpbuilder push` (what `make demo` runs), end to end on this machine:
#   1. installs docker-registry, skopeo, apache2-utils, openssl with apt-get if missing;
#   2. builds the release binary;
#   3. starts a local registry shaped like idpbuilder's Gitea (HTTPS with an idpbuilder-style
#      self-signed certificate, htpasswd user giteaadmin) on a free port of 127.0.0.1;
#   4. makes a small OCI image layout and pushes it with
#      `idpbuilder push --ca-file CERT --username giteaadmin --password-stdin ./layout HOST/...`;
#   5. checks with skopeo that the registry serves the digest idpbuilder printed;
#   6. prints PASS or FAIL and stops the registry.
# Works on a fresh Debian/Ubuntu machine as root or with sudo. KEEP=1 keeps the work dir;
# IDPBUILDER_BIN=PATH uses that binary instead of building one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USERNAME=giteaadmin
REPO=giteaadmin/demo
TAG=1.0

step() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

ensure_deps() {
  local missing=() pkg sudo=()
  for pkg in docker-registry skopeo apache2-utils openssl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  step "installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || fail "need root or sudo to install ${missing[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# A one-layer OCI image layout in $1, written with tar, gzip and sha256sum only.
# Prints the manifest digest.
make_layout() {
  local dir=$1 src diff_id layer_digest layer_size config_digest config_size manifest_digest
  src=$(mktemp -d "$WORK/src.XXXX")
  mkdir -p "$dir/blobs/sha256"
  echo "hello from the idpbuilder push demo" >"$src/hello.txt"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$src" \
    -cf "$WORK/layer.tar" hello.txt
  gzip -n -9 -c "$WORK/layer.tar" >"$WORK/layer.tar.gz"
  diff_id=$(sha256sum <"$WORK/layer.tar" | cut -d' ' -f1)
  layer_digest=$(blob "$dir" "$WORK/layer.tar.gz")
  layer_size=$(stat -c %s "$WORK/layer.tar.gz")

  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" >"$WORK/config.json"
  config_digest=$(blob "$dir" "$WORK/config.json")
  config_size=$(stat -c %s "$WORK/config.json")

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$WORK/manifest.json"
  manifest_digest=$(blob "$dir" "$WORK/manifest.json")

  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$(stat -c %s "$WORK/manifest.json")" "$TAG" >"$dir/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  echo "sha256:$manifest_digest"
}

# Stores file $2 as a blob of layout $1; prints its hex digest.
blob() {
  local hex
  hex=$(sha256sum <"$2" | cut -d' ' -f1)
  cp "$2" "$1/blobs/sha256/$hex"
  echo "$hex"
}

# skopeo with its own policy, auth file and registries.conf: no host state leaks in.
skopeo_isolated() {
  REGISTRY_AUTH_FILE="$WORK/auth.json" CONTAINERS_REGISTRIES_CONF="$WORK/registries.conf" \
    skopeo --policy "$WORK/policy.json" "$@"
}

cleanup() {
  local rc=$?
  if [[ -n ${REG_PID:-} ]]; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

ensure_deps
if [[ -n ${IDPBUILDER_BIN:-} ]]; then
  BIN=$IDPBUILDER_BIN
else
  command -v cargo >/dev/null || fail "cargo not found: install Rust from https://rustup.rs"
  step "building idpbuilder (cargo build --release)"
  (cd "$ROOT" && cargo build --release)
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/idpbuilder
fi
[[ -x $BIN ]] || fail "no binary at $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/idpbuilder-demo.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM
PASSWORD=$(openssl rand -hex 16)
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
echo '{}' >"$WORK/auth.json"
: >"$WORK/registries.conf"

step "starting a registry with TLS (idpbuilder-style certificate) and htpasswd user $USERNAME"
REG_OUT=$(printf '%s\n' "$PASSWORD" | "$ROOT/scripts/start-registry.sh" "$WORK/registry" "$USERNAME")
eval "$REG_OUT"
echo "registry at https://$REG_HOST (certificate $REG_CA_FILE, log $REG_LOG)" >&2
mkdir -p "$WORK/certs" && cp "$REG_CA_FILE" "$WORK/certs/ca.crt"

step "making a small OCI image layout"
LAYOUT=$WORK/layout
EXPECTED=$(make_layout "$LAYOUT")
echo "layout $LAYOUT, manifest $EXPECTED" >&2

DEST=$REG_HOST/$REPO:$TAG
step "idpbuilder push --ca-file $REG_CA_FILE --username $USERNAME --password-stdin $LAYOUT $DEST"
set +e
printf '%s\n' "$PASSWORD" | "$BIN" push --ca-file "$REG_CA_FILE" --username "$USERNAME" \
  --password-stdin "$LAYOUT" "$DEST" >"$WORK/push.out"
PUSH_RC=$?
set -e
cat "$WORK/push.out"
if [[ $PUSH_RC -ne 0 ]]; then
  echo "--- last lines of the registry log ---" >&2
  tail -n 15 "$REG_LOG" >&2
  fail "idpbuilder push exited with $PUSH_RC (KEEP=1 keeps the full registry log)"
fi
PRINTED=$(tail -n 1 "$WORK/push.out")
[[ $PRINTED == "$DEST@sha256:"* ]] || fail "last line '$PRINTED' is not $DEST@sha256:DIGEST"
PUSHED=${PRINTED##*@}

step "checking with skopeo"
SERVED=sha256:$(skopeo_isolated inspect --raw --cert-dir "$WORK/certs" \
  --creds "$USERNAME:$PASSWORD" "docker://$DEST" | sha256sum | cut -d' ' -f1)
TAGS=$(skopeo_isolated list-tags --cert-dir "$WORK/certs" --creds "$USERNAME:$PASSWORD" \
  "docker://$REG_HOST/$REPO" | tr -d ' \n')

printf '\n  printed by idpbuilder: %s\n  served by registry:    %s\n  built locally:         %s\n  tags: %s\n' \
  "$PUSHED" "$SERVED" "$EXPECTED" "$TAGS"
[[ $PUSHED == "$SERVED" ]] || fail "the registry serves $SERVED, idpbuilder printed $PUSHED"
[[ $SERVED == "$EXPECTED" ]] || fail "the registry serves $SERVED, the layout holds $EXPECTED"
printf '\nPASS: %s pushed and verified\n' "$PRINTED"
