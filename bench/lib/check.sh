#!/usr/bin/env bash
# Checks that a pipeline's artifacts exist and are valid, node by node:
#   - exactly one .tar.gz, .deb and .rpm per node, and nothing else;
#   - the .tar.gz lists (tar tzf), the .deb reads (dpkg-deb -I, a gzip data
#     member) and the .rpm reads (rpm -qpi, digests by rpm -K, gzip payload),
#     each with the package name of its node and every required path;
#   - the node's certificate (taken from its .deb) is RSA-2048, names the
#     node's IP and is signed by the CA, which is the same on every node;
#   - the .deb's etcd is the stand-in release's etcd, byte for byte.
#
#   check.sh DIST NODES ETCD_SHA256
# Prints one line; exits non-zero, naming every failure, if any check fails.
set -uo pipefail

dist=$1 nodes=$2 etcd_sha=$3
version=3.4.16 release=1
required=(
  /opt/etcd/bin/etcd /opt/etcd/bin/etcdctl /opt/etcd/cfg/etcd.conf
  /opt/etcd/ssl/ca.pem /opt/etcd/ssl/server.pem /opt/etcd/ssl/server-key.pem
  /usr/lib/systemd/system/etcd.service
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "check: $*" >&2
  failures=$((failures + 1))
}
# has_paths LISTING WHAT: every required path is an entry of LISTING, which
# may put a prefix (./, a top directory) before it.
has_paths() {
  local p
  for p in "${required[@]}"; do
    grep -Eq "(^|/)${p#/}\$" "$1" || fail "$2: no ${p}"
  done
}

n=0 ca_sha=""
while read -r name ip; do
  n=$((n + 1))
  pkg=etcd-bench-$name
  tgz=$dist/${pkg}_$version-${release}_amd64.tar.gz
  deb=$dist/${pkg}_$version-${release}_amd64.deb
  rpmf=$dist/$pkg-$version-$release.x86_64.rpm

  if [ ! -s "$tgz" ]; then
    fail "missing $tgz"
  elif ! tar tzf "$tgz" >"$tmp/tar.lst" 2>"$tmp/err"; then
    fail "$tgz: tar tzf: $(cat "$tmp/err")"
  else
    has_paths "$tmp/tar.lst" "$tgz"
  fi

  if [ ! -s "$deb" ]; then
    fail "missing $deb"
  elif ! dpkg-deb -I "$deb" >/dev/null 2>"$tmp/err"; then
    fail "$deb: dpkg-deb -I: $(cat "$tmp/err")"
  else
    [ "$(dpkg-deb -f "$deb" Package)" = "$pkg" ] || fail "$deb: Package is not $pkg"
    ar t "$deb" | grep -qx data.tar.gz || fail "$deb: no gzip data member (data.tar.gz)"
    dpkg-deb --fsys-tarfile "$deb" | tar t >"$tmp/deb.lst"
    has_paths "$tmp/deb.lst" "$deb"
    rm -rf "$tmp/x" && mkdir "$tmp/x"
    dpkg-deb --fsys-tarfile "$deb" |
      tar x -C "$tmp/x" --wildcards '*opt/etcd/ssl/ca.pem' '*opt/etcd/ssl/server.pem' \
        '*opt/etcd/bin/etcd' 2>"$tmp/err" ||
      fail "$deb: cannot extract: $(cat "$tmp/err")"
    ssl=$tmp/x/opt/etcd/ssl
    if [ -s "$ssl/server.pem" ] && [ -s "$ssl/ca.pem" ]; then
      openssl verify -CAfile "$ssl/ca.pem" "$ssl/server.pem" >/dev/null 2>"$tmp/err" ||
        fail "$deb: certificate not signed by its CA: $(cat "$tmp/err")"
      openssl x509 -in "$ssl/server.pem" -noout -text >"$tmp/cert.txt"
      if ! grep -q "Public-Key: (2048 bit)" "$tmp/cert.txt" || ! grep -q rsaEncryption "$tmp/cert.txt"; then
        fail "$deb: certificate key is not RSA-2048"
      fi
      grep -Eq "IP Address:$ip(,|\$)" "$tmp/cert.txt" || fail "$deb: certificate does not name $ip"
      this_ca=$(sha256sum <"$ssl/ca.pem")
      [ -z "$ca_sha" ] && ca_sha=$this_ca
      [ "$this_ca" = "$ca_sha" ] || fail "$deb: another CA than the first node's"
    fi
    if [ ! -s "$tmp/x/opt/etcd/bin/etcd" ] ||
      [ "$(sha256sum <"$tmp/x/opt/etcd/bin/etcd" | cut -d' ' -f1)" != "$etcd_sha" ]; then
      fail "$deb: etcd is not the release's etcd"
    fi
  fi

  if [ ! -s "$rpmf" ]; then
    fail "missing $rpmf"
  elif ! rpm -qpi "$rpmf" >/dev/null 2>"$tmp/err"; then
    fail "$rpmf: rpm -qpi: $(cat "$tmp/err")"
  else
    [ "$(rpm -qp --qf '%{NAME}' "$rpmf" 2>/dev/null)" = "$pkg" ] || fail "$rpmf: Name is not $pkg"
    [ "$(rpm -qp --qf '%{PAYLOADCOMPRESSOR}' "$rpmf" 2>/dev/null)" = gzip ] || fail "$rpmf: payload is not gzip"
    rpm -K --nosignature "$rpmf" >"$tmp/err" 2>&1 || fail "$rpmf: rpm -K: $(cat "$tmp/err")"
    rpm -qpl "$rpmf" 2>/dev/null >"$tmp/rpm.lst"
    has_paths "$tmp/rpm.lst" "$rpmf"
  fi
done <"$nodes"

for ext in tar.gz deb rpm; do
  count=$(find "$dist" -maxdepth 1 -type f -name "*.$ext" | wc -l)
  [ "$count" = "$n" ] || fail "$dist: $count .$ext files for $n nodes"
done

if [ "$failures" -gt 0 ]; then
  echo "check: $dist: $failures failure(s)" >&2
  exit 1
fi
echo "check: $dist: $n nodes, $((3 * n)) artifacts valid (tar tzf, dpkg-deb -I, rpm -qpi -K, openssl verify)"
