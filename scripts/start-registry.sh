#!/usr/bin/env bash
# Start a throw-away OCI registry (CNCF distribution, Debian package docker-registry) shaped like
# idpbuilder's Gitea: HTTPS with one self-signed idpbuilder-style certificate and htpasswd auth.
#
# usage: scripts/start-registry.sh WORKDIR [USERNAME]
#   The password is read from standard input (one line). Certificates, htpasswd, config, storage
#   and the log go to WORKDIR. The registry runs in the background on a free port of 127.0.0.1
#   (never the packaged service's :5000). On success, prints shell assignments to eval:
#     REG_HOST=127.0.0.1:PORT REG_PORT REG_PID REG_CA_FILE REG_LOG REG_USER
#   Stop it with: kill "$REG_PID"
#
# example: eval "$(echo s3cret | scripts/start-registry.sh /tmp/reg giteaadmin)"
set -euo pipefail

die() { echo "start-registry: error: $*" >&2; exit 1; }

[[ $# -ge 1 ]] || die "usage: $0 WORKDIR [USERNAME] (password on stdin)"
workdir=$1
user=${2:-giteaadmin}
registry_bin=${REGISTRY_BIN_PATH:-/usr/bin/docker-registry}

for cmd in "$registry_bin" openssl htpasswd; do
  command -v "$cmd" >/dev/null || die "$cmd not found; run: sudo make deps"
done
IFS= read -r password || true
[[ -n "$password" ]] || die "no password on standard input"

mkdir -p "$workdir/storage"
workdir=$(cd "$workdir" && pwd)

# idpbuilder's certificate: one self-signed ECDSA P-256 certificate that is a CA (CA:TRUE,
# keyCertSign) and the server's own (serverAuth, host names in the SAN).
cat >"$workdir/cert.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3
[dn]
O = cnoe.io
CN = cnoe.localtest.me
[v3]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,DNS:gitea.cnoe.localtest.me,DNS:cnoe.localtest.me,IP:127.0.0.1
subjectKeyIdentifier = hash
EOF
openssl req -x509 -new -config "$workdir/cert.cnf" -newkey ec \
  -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -keyout "$workdir/tls.key" -out "$workdir/tls.crt" 2>/dev/null \
  || die "openssl could not make the certificate"

# bcrypt htpasswd; the password goes through stdin, not the command line.
printf '%s\n' "$password" | htpasswd -iBn "$user" >"$workdir/htpasswd" 2>/dev/null \
  || die "htpasswd failed"

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

log=$workdir/registry.log
for _attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  port_is_free "$port" || continue
  cat >"$workdir/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: "$workdir/storage"
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: idpbuilder-push-demo
  tls:
    certificate: "$workdir/tls.crt"
    key: "$workdir/tls.key"
auth:
  htpasswd:
    realm: idpbuilder-push-demo
    path: "$workdir/htpasswd"
EOF
  # env -i: the registry treats REGISTRY_* variables as config overrides.
  env -i PATH="$PATH" "$registry_bin" serve "$workdir/config.yml" >"$log" 2>&1 &
  pid=$!
  for _tick in $(seq 100); do # 10 s
    if grep -q "listening on" "$log"; then
      printf 'REG_HOST=127.0.0.1:%s\nREG_PORT=%s\nREG_PID=%s\n' "$port" "$port" "$pid"
      printf 'REG_CA_FILE=%q\nREG_LOG=%q\nREG_USER=%q\n' "$workdir/tls.crt" "$log" "$user"
      exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q "address already in use" "$log" || { cat "$log" >&2; die "registry did not start"; }
done
die "no free port found after 5 attempts"
