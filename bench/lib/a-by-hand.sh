#!/usr/bin/env bash
# Pipeline A, by hand: the recipe users copy, one node after the other.
# cfssl for the PKI, a tree per node built with install and a heredoc,
# `tar czf` for the bundle, `dpkg-deb -Zgzip --build` for the .deb and
# `rpmbuild -bb` (gzip payload) from a generated spec for the .rpm.
#
#   a-by-hand.sh NODES RELEASE OUT      artifacts in OUT/dist
set -euo pipefail
NODES=$1 RELEASE=$2 OUT=$3
# shellcheck source=bench/lib/recipe.sh
. "$(dirname "$0")/recipe.sh"

read_nodes
mkdir -p "$OUT/dist"
unpack_release
make_pki
write_unit
cluster=$(initial_cluster)
top=$OUT/rpmbuild
mkdir -p "$top/SPECS"

for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]} ip=${IPS[$i]}
  pkg=etcd-$CLUSTER-$name
  tree=$OUT/nodes/$name
  stage_node "$tree" "$name" "$ip" "$cluster"

  bundle_node "$tree" "${pkg}_$VERSION-${PKG_RELEASE}_amd64" \
    "$OUT/dist/${pkg}_$VERSION-${PKG_RELEASE}_amd64.tar.gz"

  # .deb: a DEBIAN/control in the tree, then dpkg-deb.
  install -d -m 0755 "$tree/DEBIAN"
  cat >"$tree/DEBIAN/control" <<EOF
Package: $pkg
Version: $VERSION-$PKG_RELEASE
Architecture: amd64
Maintainer: etcd operators <root@localhost>
Section: database
Priority: optional
Description: etcd member $name of cluster $CLUSTER
 etcd $VERSION with TLS certificates and configuration for $name ($ip).
EOF
  dpkg-deb --root-owner-group -Zgzip --build "$tree" \
    "$OUT/dist/${pkg}_$VERSION-${PKG_RELEASE}_amd64.deb" >/dev/null

  # .rpm: a spec whose %install copies the tree, and an explicit %files.
  cat >"$top/SPECS/$pkg.spec" <<EOF
%define _binary_payload w6.gzdio
%define debug_package %{nil}
%define __os_install_post %{nil}
%define _build_id_links none
Name: $pkg
Version: $VERSION
Release: $PKG_RELEASE
Summary: etcd member $name of cluster $CLUSTER
License: Apache-2.0
AutoReqProv: no

%description
etcd $VERSION with TLS certificates and configuration for $name ($ip).

%install
mkdir -p %{buildroot}
cp -a $tree/opt $tree/usr %{buildroot}/

%files
%dir $INSTALL_DIR
%dir $INSTALL_DIR/bin
%dir $INSTALL_DIR/cfg
%dir $INSTALL_DIR/ssl
%attr(0755,root,root) $INSTALL_DIR/bin/etcd
%attr(0755,root,root) $INSTALL_DIR/bin/etcdctl
%config %attr(0644,root,root) $INSTALL_DIR/cfg/etcd.conf
%attr(0644,root,root) $INSTALL_DIR/ssl/ca.pem
%attr(0644,root,root) $INSTALL_DIR/ssl/server.pem
%attr(0600,root,root) $INSTALL_DIR/ssl/server-key.pem
%attr(0644,root,root) /usr/lib/systemd/system/etcd.service
EOF
  rpmbuild -bb --quiet --target x86_64 --define "_topdir $top" \
    "$top/SPECS/$pkg.spec" >/dev/null
  mv "$top/RPMS/x86_64/$pkg-$VERSION-$PKG_RELEASE.x86_64.rpm" "$OUT/dist/"
done
