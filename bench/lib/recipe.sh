# shellcheck shell=bash
# Sourced by a-by-hand.sh and b-nfpm.sh: the parts of the by-hand recipe that
# both share, written as the recipe writes them (cfssl for the PKI, heredocs
# for the config, install/cp for each node's tree).
#
# Expects: NODES (a file of "name ip" lines), RELEASE (the release tarball),
# OUT (the pipeline's directory, created here). Sets NAMES, IPS, REL (the
# unpacked release), PKI.
# shellcheck disable=SC2034 # the constants below are used by the callers

CLUSTER=bench
TOKEN=etcd_cluster
VERSION=3.4.16
PKG_RELEASE=1
INSTALL_DIR=/opt/etcd
DATA_DIR=/var/lib/etcd/default.etcd

read_nodes() {
  NAMES=() IPS=()
  local name ip
  while read -r name ip; do
    NAMES+=("$name") IPS+=("$ip")
  done <"$NODES"
}

initial_cluster() {
  local i out=""
  for i in "${!NAMES[@]}"; do
    out+="${out:+,}${NAMES[$i]}=https://${IPS[$i]}:2380"
  done
  printf '%s' "$out"
}

# Unpack the release as a user does after downloading it.
unpack_release() {
  mkdir -p "$OUT/release"
  tar xzf "$RELEASE" -C "$OUT/release"
  REL=$OUT/release/etcd-v$VERSION-linux-amd64
}

# The CA, then one certificate per node: cfssl gencert, RSA-2048, a signing
# profile for server and client auth (etcd uses it for both, and for peers).
make_pki() {
  PKI=$OUT/pki
  mkdir -p "$PKI"
  cat >"$PKI/ca-config.json" <<'EOF'
{
  "signing": {
    "default": { "expiry": "87600h" },
    "profiles": {
      "etcd": {
        "expiry": "87600h",
        "usages": ["signing", "key encipherment", "server auth", "client auth"]
      }
    }
  }
}
EOF
  cat >"$PKI/ca-csr.json" <<'EOF'
{
  "CN": "etcd CA",
  "key": { "algo": "rsa", "size": 2048 },
  "names": [{ "C": "CN", "ST": "Beijing", "L": "Beijing" }]
}
EOF
  (cd "$PKI" && cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca)
  local i name ip
  for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]} ip=${IPS[$i]}
    cat >"$PKI/$name-csr.json" <<EOF
{
  "CN": "$name",
  "hosts": ["$ip", "$name", "localhost", "127.0.0.1", "::1", "peer.$CLUSTER.etcd.invalid"],
  "key": { "algo": "rsa", "size": 2048 },
  "names": [{ "C": "CN", "ST": "Beijing", "L": "Beijing" }]
}
EOF
    (cd "$PKI" && cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json \
      -profile=etcd "$name-csr.json" 2>/dev/null | cfssljson -bare "$name")
  done
}

# The unit, written once and copied to every node.
write_unit() {
  cat >"$OUT/etcd.service" <<EOF
[Unit]
Description=etcd
Documentation=https://etcd.io/docs/v3.4/
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=$INSTALL_DIR/cfg/etcd.conf
ExecStart=$INSTALL_DIR/bin/etcd
Restart=on-failure
RestartSec=5s
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
EOF
}

# One node's tree under $1: the binaries, its etcd.conf (a heredoc with the
# same settings etcdpack writes), the CA certificate, its own certificate and
# key, and the unit.
stage_node() {
  local tree=$1 name=$2 ip=$3 cluster=$4
  install -d -m 0755 "$tree$INSTALL_DIR/bin" "$tree$INSTALL_DIR/cfg" "$tree$INSTALL_DIR/ssl" \
    "$tree/usr/lib/systemd/system"
  install -m 0755 "$REL/etcd" "$REL/etcdctl" "$tree$INSTALL_DIR/bin/"
  cat >"$tree$INSTALL_DIR/cfg/etcd.conf" <<EOF
# [member]
ETCD_NAME=$name
ETCD_DATA_DIR=$DATA_DIR
ETCD_LISTEN_PEER_URLS=https://$ip:2380
ETCD_LISTEN_CLIENT_URLS=https://$ip:2379
ETCD_HEARTBEAT_INTERVAL=100
ETCD_ELECTION_TIMEOUT=1000
ETCD_QUOTA_BACKEND_BYTES=8589934592
ETCD_AUTO_COMPACTION_RETENTION=1
ETCD_ENABLE_V2=true

# [clustering]
ETCD_INITIAL_ADVERTISE_PEER_URLS=https://$ip:2380
ETCD_ADVERTISE_CLIENT_URLS=https://$ip:2379
ETCD_INITIAL_CLUSTER=$cluster
ETCD_INITIAL_CLUSTER_TOKEN=$TOKEN
ETCD_INITIAL_CLUSTER_STATE=new

# [security]
ETCD_CERT_FILE=$INSTALL_DIR/ssl/server.pem
ETCD_KEY_FILE=$INSTALL_DIR/ssl/server-key.pem
ETCD_TRUSTED_CA_FILE=$INSTALL_DIR/ssl/ca.pem
ETCD_CLIENT_CERT_AUTH=true
ETCD_PEER_CERT_FILE=$INSTALL_DIR/ssl/server.pem
ETCD_PEER_KEY_FILE=$INSTALL_DIR/ssl/server-key.pem
ETCD_PEER_TRUSTED_CA_FILE=$INSTALL_DIR/ssl/ca.pem
ETCD_PEER_CLIENT_CERT_AUTH=true
ETCD_PEER_CERT_ALLOWED_HOSTNAME=peer.$CLUSTER.etcd.invalid
EOF
  install -m 0644 "$PKI/ca.pem" "$tree$INSTALL_DIR/ssl/ca.pem"
  install -m 0644 "$PKI/$name.pem" "$tree$INSTALL_DIR/ssl/server.pem"
  install -m 0600 "$PKI/$name-key.pem" "$tree$INSTALL_DIR/ssl/server-key.pem"
  install -m 0644 "$OUT/etcd.service" "$tree/usr/lib/systemd/system/etcd.service"
}

# The bundle: the tree under one top directory, as etcdpack's bundle has.
bundle_node() {
  local tree=$1 top=$2 dest=$3
  tar czf "$dest" --owner=0 --group=0 --numeric-owner \
    --transform "s,^\.,$top/root," -C "$tree" ./opt ./usr
}
