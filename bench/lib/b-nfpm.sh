#!/usr/bin/env bash
# Pipeline B, nfpm: the recipe's cfssl PKI and per-node tree, `tar czf` for
# the bundle, then `nfpm pkg -p deb` and `nfpm pkg -p rpm` per node from a
# generated nfpm.yaml (gzip for both, as etcdpack writes them).
#
#   b-nfpm.sh NODES RELEASE OUT      artifacts in OUT/dist; nfpm is $NFPM
set -euo pipefail
NODES=$1 RELEASE=$2 OUT=$3
NFPM=${NFPM:-nfpm}
# shellcheck source=bench/lib/recipe.sh
. "$(dirname "$0")/recipe.sh"

read_nodes
mkdir -p "$OUT/dist"
unpack_release
make_pki
write_unit
cluster=$(initial_cluster)

for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]} ip=${IPS[$i]}
  pkg=etcd-$CLUSTER-$name
  tree=$OUT/nodes/$name
  stage_node "$tree" "$name" "$ip" "$cluster"

  bundle_node "$tree" "${pkg}_$VERSION-${PKG_RELEASE}_amd64" \
    "$OUT/dist/${pkg}_$VERSION-${PKG_RELEASE}_amd64.tar.gz"

  t=$tree$INSTALL_DIR
  cat >"$OUT/nodes/$name.nfpm.yaml" <<EOF
name: $pkg
arch: amd64
platform: linux
version: $VERSION
release: $PKG_RELEASE
section: database
priority: optional
maintainer: etcd operators <root@localhost>
description: etcd member $name of cluster $CLUSTER ($ip)
license: Apache-2.0
contents:
  - { src: $t/bin/etcd, dst: $INSTALL_DIR/bin/etcd, file_info: { mode: 0755 } }
  - { src: $t/bin/etcdctl, dst: $INSTALL_DIR/bin/etcdctl, file_info: { mode: 0755 } }
  - { src: $t/cfg/etcd.conf, dst: $INSTALL_DIR/cfg/etcd.conf, file_info: { mode: 0644 } }
  - { src: $t/ssl/ca.pem, dst: $INSTALL_DIR/ssl/ca.pem, file_info: { mode: 0644 } }
  - { src: $t/ssl/server.pem, dst: $INSTALL_DIR/ssl/server.pem, file_info: { mode: 0644 } }
  - { src: $t/ssl/server-key.pem, dst: $INSTALL_DIR/ssl/server-key.pem, file_info: { mode: 0600 } }
  - src: $tree/usr/lib/systemd/system/etcd.service
    dst: /usr/lib/systemd/system/etcd.service
    file_info: { mode: 0644 }
deb:
  compression: gzip
rpm:
  compression: gzip
EOF
  "$NFPM" pkg -f "$OUT/nodes/$name.nfpm.yaml" -p deb \
    -t "$OUT/dist/${pkg}_$VERSION-${PKG_RELEASE}_amd64.deb" >/dev/null
  "$NFPM" pkg -f "$OUT/nodes/$name.nfpm.yaml" -p rpm \
    -t "$OUT/dist/$pkg-$VERSION-$PKG_RELEASE.x86_64.rpm" >/dev/null
done
