#!/usr/bin/env bash
# The by-hand baseline of `etcdpack publish`: the .deb and .rpm packages of a
# gen run turned into a signed apt repository and a signed dnf/yum repository
# with the usual tools, the layout etcdpack writes (one directory, apt and
# dnf side by side, suite `stable`):
#
#   apt:  cp *.deb pool/main/; apt-ftparchive packages pool > Packages;
#         gzip -k Packages; apt-ftparchive release (Origin, Label, Suite,
#         Codename, Architectures, Components given with -o); gpg --clearsign
#         -> InRelease, gpg --detach-sign --armor -> Release.gpg
#   dnf:  cp *.rpm rpm/stable/x86_64/Packages/; rpmsign --addsign (one rpmsign
#         for all of them, %_gpg_name the key, %_gpg_path the GNUPGHOME,
#         %__gpg the gpg on the PATH, SHA-256 as everywhere else);
#         createrepo_c --general-compress-type=gz --no-database;
#         gpg --detach-sign --armor repodata/repomd.xml
#   the client files etcdpack also writes: the public key (gpg --export
#   --armor), a deb822 .sources with the key in Signed-By, a .repo
#
#   publish-by-hand.sh DIST REPO GNUPGHOME KEYID
# DIST: a gen run's dist/ directory; REPO: created, must not exist yet;
# GNUPGHOME: holds the signing key, without a passphrase; KEYID: its
# fingerprint.
set -euo pipefail
DIST=$1 REPO=$2 KEYID=$4
export GNUPGHOME=$3
SUITE=stable
LABEL=etcd-bench
APT_ARCH=amd64
RPM_ARCH=x86_64

mkdir -p "$REPO"
cd "$REPO"
gpg_sign() { gpg --batch --yes --quiet --local-user "$KEYID" --digest-algo SHA256 "$@"; }

# --- apt -----------------------------------------------------------------------
dists=dists/$SUITE
index=$dists/main/binary-$APT_ARCH
mkdir -p pool/main "$index"
cp "$DIST"/*.deb pool/main/
apt-ftparchive packages pool >"$index/Packages"
gzip -k "$index/Packages"
apt-ftparchive \
  -o "APT::FTPArchive::Release::Origin=$LABEL" \
  -o "APT::FTPArchive::Release::Label=$LABEL" \
  -o "APT::FTPArchive::Release::Suite=$SUITE" \
  -o "APT::FTPArchive::Release::Codename=$SUITE" \
  -o "APT::FTPArchive::Release::Architectures=$APT_ARCH" \
  -o "APT::FTPArchive::Release::Components=main" \
  release "$dists" >Release.new
mv Release.new "$dists/Release"
gpg_sign --clearsign --output "$dists/InRelease" "$dists/Release"
gpg_sign --detach-sign --armor --output "$dists/Release.gpg" "$dists/Release"

# --- dnf/yum -------------------------------------------------------------------
yum=rpm/$SUITE/$RPM_ARCH
mkdir -p "$yum/Packages"
cp "$DIST"/*.rpm "$yum/Packages/"
# Debian's rpm names /usr/bin/gpg2 as %__gpg, which bookworm does not have.
rpmsign --define "_gpg_name $KEYID" --define "_gpg_path $GNUPGHOME" \
  --define "__gpg $(command -v gpg)" --define "_gpg_digest_algo sha256" --addsign "$yum"/Packages/*.rpm >/dev/null
createrepo_c --quiet --general-compress-type=gz --no-database "$yum"
gpg_sign --detach-sign --armor --output "$yum/repodata/repomd.xml.asc" "$yum/repodata/repomd.xml"

# --- client files --------------------------------------------------------------
gpg --batch --armor --export "$KEYID" >"$LABEL.asc"
{
  printf 'Types: deb\nURIs: file://%s\nSuites: %s\nComponents: main\nSigned-By:\n' "$REPO" "$SUITE"
  sed -e 's/^$/./' -e 's/^/ /' "$LABEL.asc"
} >"$LABEL.sources"
cat >"$LABEL.repo" <<EOF
[$LABEL]
name=$LABEL $SUITE
baseurl=file://$REPO/rpm/$SUITE/\$basearch
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=file://$REPO/$LABEL.asc
EOF
