#!/usr/bin/env bash
# Checks that a published repository (by hand or by etcdpack) is valid and
# complete, with neither apt-ftparchive nor createrepo_c:
#   apt: InRelease and Release.gpg verify with gpgv against the public key,
#        InRelease signs the bytes of Release; Release lists Packages and
#        Packages.gz with their SHA-256 and size; Packages.gz unpacks to
#        Packages; Packages has one stanza per node, named etcd-bench-etcd-1
#        ... -N, each of whose Filename exists with its Size and SHA256;
#   dnf: repodata/repomd.xml.asc verifies with gpgv; repomd.xml's primary
#        metadata has its checksum and lists one package per node, the same
#        names, each of whose location exists; every pooled .rpm passes
#        rpm -K (digests and signature) with the key imported into an rpm
#        database of its own (--dbpath), and fails it without.
#
#   publish-check.sh REPO NODES PUBKEY
# REPO: the repository; NODES: the node count; PUBKEY: the armored public
# key. Prints one line; exits non-zero, naming every failure, if any fails.
set -uo pipefail

repo=$1 nodes=$2 pubkey=$3
suite=stable
dists=$repo/dists/$suite
index=$dists/main/binary-amd64
yum=$repo/rpm/$suite/x86_64
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "check: $repo: $*" >&2
  failures=$((failures + 1))
}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

for i in $(seq 1 "$nodes"); do echo "etcd-bench-etcd-$i"; done | sort >"$tmp/expected"
GNUPGHOME=$tmp/gnupg
export GNUPGHOME
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --dearmor <"$pubkey" >"$tmp/key.gpg" || fail "cannot read the public key $pubkey"
gpgv_() { gpgv --quiet --keyring "$tmp/key.gpg" "$@" 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }; }

# --- apt -----------------------------------------------------------------------
if [ ! -s "$dists/InRelease" ] || [ ! -s "$dists/Release" ] || [ ! -s "$dists/Release.gpg" ]; then
  fail "no $dists/{Release,InRelease,Release.gpg}"
else
  gpgv_ --output "$tmp/inrelease.txt" "$dists/InRelease" || fail "InRelease does not verify with gpgv"
  gpgv_ "$dists/Release.gpg" "$dists/Release" || fail "Release.gpg does not verify with gpgv"
  # A clearsigned text may lose its last newline; compare without it.
  [ "$(cat "$tmp/inrelease.txt")" = "$(cat "$dists/Release")" ] || fail "InRelease does not sign the text of Release"
  for f in Packages Packages.gz; do
    p=main/binary-amd64/$f
    line=$(awk -v p="$p" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == p { print $1, $2 }' "$dists/Release")
    if [ ! -f "$index/$f" ]; then
      fail "no $p"
    elif [ "$line" != "$(sha256sum <"$index/$f" | cut -d' ' -f1) $(stat -c %s "$index/$f")" ]; then
      fail "Release's SHA256 and size of $p are not the file's"
    fi
  done
  zcat "$index/Packages.gz" 2>/dev/null | cmp -s - "$index/Packages" || fail "Packages.gz does not unpack to Packages"
  awk '/^Package: / { print $2 }' "$index/Packages" | sort >"$tmp/debs"
  cmp -s "$tmp/debs" "$tmp/expected" ||
    fail "Packages lists $(wc -l <"$tmp/debs") packages, not etcd-bench-etcd-1 to -$nodes"
  # Every Filename, with its Size and SHA256.
  awk '/^Filename: / { f = $2 } /^Size: / { s = $2 } /^SHA256: / { h = $2 }
       /^$/ { if (f != "") print f, s, h; f = "" } END { if (f != "") print f, s, h }' \
    "$index/Packages" >"$tmp/files"
  [ "$(wc -l <"$tmp/files")" = "$nodes" ] || fail "Packages has $(wc -l <"$tmp/files") Filename/Size/SHA256 stanzas"
  while read -r f size sha; do
    if [ ! -f "$repo/$f" ]; then
      fail "Packages names $f, which is not there"
    elif [ "$(stat -c %s "$repo/$f")" != "$size" ] || [ "$(sha256sum <"$repo/$f" | cut -d' ' -f1)" != "$sha" ]; then
      fail "$f: not the Size and SHA256 that Packages gives"
    fi
  done <"$tmp/files"
  debs=$(find "$repo/pool" -type f -name '*.deb' | wc -l)
  [ "$debs" = "$nodes" ] || fail "$debs .deb files in the pool for $nodes nodes"
fi

# --- dnf/yum -------------------------------------------------------------------
if [ ! -s "$yum/repodata/repomd.xml" ] || [ ! -s "$yum/repodata/repomd.xml.asc" ]; then
  fail "no $yum/repodata/repomd.xml{,.asc}"
else
  gpgv_ "$yum/repodata/repomd.xml.asc" "$yum/repodata/repomd.xml" || fail "repomd.xml.asc does not verify with gpgv"
  "$PY" - "$yum" "$tmp/rpms" "$tmp/locations" <<'EOF' || fail "the primary metadata does not check out"
import gzip, hashlib, sys, xml.etree.ElementTree as ET
yum, names_out, locations_out = sys.argv[1:4]
R = "{http://linux.duke.edu/metadata/repo}"
C = "{http://linux.duke.edu/metadata/common}"
repomd = ET.parse(f"{yum}/repodata/repomd.xml").getroot()
primary = [d for d in repomd.iter(R + "data") if d.get("type") == "primary"]
if len(primary) != 1:
    sys.exit("repomd.xml: not one primary")
href = primary[0].find(R + "location").get("href")
checksum = primary[0].find(R + "checksum")
raw = open(f"{yum}/{href}", "rb").read()
if checksum.get("type") != "sha256" or hashlib.sha256(raw).hexdigest() != checksum.text:
    sys.exit(f"{href}: not the sha256 checksum repomd.xml gives")
root = ET.fromstring(gzip.decompress(raw))
packages = root.findall(C + "package")
if root.get("packages") != str(len(packages)):
    sys.exit(f"{href}: packages={root.get('packages')} but {len(packages)} listed")
with open(names_out, "w") as n, open(locations_out, "w") as l:
    for p in packages:
        n.write(p.find(C + "name").text + "\n")
        l.write(p.find(C + "location").get("href") + "\n")
EOF
  if [ -f "$tmp/rpms" ]; then
    sort -o "$tmp/rpms" "$tmp/rpms"
    cmp -s "$tmp/rpms" "$tmp/expected" ||
      fail "primary.xml.gz lists $(wc -l <"$tmp/rpms") packages, not etcd-bench-etcd-1 to -$nodes"
    while read -r loc; do
      [ -f "$yum/$loc" ] || fail "primary.xml.gz names $loc, which is not there"
    done <"$tmp/locations"
  fi
  mapfile -t rpms < <(find "$yum/Packages" -type f -name '*.rpm' | sort)
  [ "${#rpms[@]}" = "$nodes" ] || fail "${#rpms[@]} .rpm files in $yum/Packages for $nodes nodes"
  if [ "${#rpms[@]}" -gt 0 ]; then
    db=$tmp/rpmdb
    mkdir "$db"
    if rpm --dbpath "$db" -K "${rpms[0]}" >/dev/null 2>&1; then
      fail "${rpms[0]}: rpm -K passes without the key imported (not signed?)"
    fi
    rpm --dbpath "$db" --import "$pubkey" || fail "rpm --import $pubkey failed"
    rpm --dbpath "$db" -K "${rpms[@]}" >"$tmp/rpmk" 2>&1 || fail "rpm -K failed: $(grep -v ' digests signatures OK$' "$tmp/rpmk" | head -3)"
    ok=$(grep -c ': digests signatures OK$' "$tmp/rpmk")
    [ "$ok" = "${#rpms[@]}" ] || fail "rpm -K: $ok of ${#rpms[@]} packages with digests and signature OK"
    rpm --dbpath "$db" -Kv "${rpms[0]}" >"$tmp/rpmkv" 2>&1
    grep -q 'Header V4 RSA/SHA256 Signature, key ID [0-9a-f]*: OK' "$tmp/rpmkv" ||
      fail "${rpms[0]}: no V4 RSA/SHA256 header signature that rpm -Kv verifies"
  fi
fi

if [ "$failures" -gt 0 ]; then
  echo "check: $repo: $failures failure(s)" >&2
  exit 1
fi
echo "check: $repo: valid (gpgv InRelease, Release.gpg, repomd.xml.asc; $nodes packages in Packages and primary.xml.gz; rpm -K of all $nodes .rpm with the key)"
