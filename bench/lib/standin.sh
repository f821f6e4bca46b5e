#!/usr/bin/env bash
# Builds the stand-in etcd release: the official layout of
# etcd-v3.4.16-linux-amd64.tar.gz with Debian's etcd and etcdctl inside, the
# same way tests/support/mod.rs builds it (entries sorted, uid/gid 0, the
# 3.4.16 release date as every mtime, fast gzip).
#
#   standin.sh DIR      writes DIR/etcd-v3.4.16-linux-amd64.tar.gz and DIR/sha256
#
# The binaries come from `apt-get download etcd-server etcd-client` unpacked
# with `dpkg-deb -x`, so the installed system is not involved. The result is
# reused while the downloaded .deb files are the same.
set -euo pipefail

dir=$1
version=3.4.16
arch=amd64
stem=etcd-v$version-linux-$arch
release_mtime=1621036800 # 2021-05-15, the official 3.4.16 release date

mkdir -p "$dir/debs"
cd "$dir/debs"
if ! ls etcd-server_*.deb etcd-client_*.deb >/dev/null 2>&1; then
  # apt-get drops to _apt to download, which cannot write here.
  apt-get -o APT::Sandbox::User=root download etcd-server etcd-client >&2
fi
key=$(sha256sum etcd-server_*.deb etcd-client_*.deb | sha256sum | cut -c1-16)
cd "$dir"
if [ -s "$stem.tar.gz" ] && [ "$(cat key 2>/dev/null)" = "$key" ]; then
  exit 0
fi

rm -rf unpacked layout "$stem.tar.gz" sha256 key
for deb in debs/etcd-server_*.deb debs/etcd-client_*.deb; do
  dpkg-deb -x "$deb" unpacked
done

root=layout/$stem
install -d -m 0755 "$root/Documentation/dev-guide" "$root/Documentation/op-guide"
doc() { printf '# %s\n\nStand-in for the etcd documentation.\n' "$1"; }
doc Documentation >"$root/Documentation/README.md"
doc "Interacting with etcd" >"$root/Documentation/dev-guide/interacting_v3.md"
doc "Clustering Guide" >"$root/Documentation/op-guide/clustering.md"
doc etcdctl >"$root/README-etcdctl.md"
doc etcd >"$root/README.md"
doc "etcdctl v2" >"$root/READMEv2-etcdctl.md"
chmod 0644 "$root"/*.md "$root"/Documentation/*.md "$root"/Documentation/*/*.md
install -m 0755 unpacked/usr/bin/etcd "$root/etcd"
install -m 0755 unpacked/usr/bin/etcdctl "$root/etcdctl"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$release_mtime" \
  --format=gnu -C layout -cf - "$stem" | gzip -1 -n >"$stem.tar.gz.part"
mv "$stem.tar.gz.part" "$stem.tar.gz"
sha256sum "$stem.tar.gz" | cut -d' ' -f1 >sha256
echo "$key" >key
rm -rf unpacked layout
