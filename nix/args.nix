# Which etcd release a cluster config asks for, and how to fetch and verify it.
#
#   import ./args.nix { etcd = { version = "3.4.16"; arch = "arm64"; }; }
#   => { version, arch, sha256Hex, sri, url, fileName, stem, pinned, fetchurl }
#
# The argument is the cluster config as an attrset (only `etcd` is read; other
# keys are ignored). Defaults and errors follow src/config/validate.rs: version
# 3.4.16, arch amd64, the checksum from an explicit `etcd.sha256` or else the
# pinned table. Pure: no nixpkgs, so it evaluates with plain nix-instantiate.
config:

let
  pins = import ./pins.nix;

  # The Rust side's constants (release::DEFAULT_VERSION, release::OFFICIAL_BASE).
  defaultVersion = "3.4.16";
  officialBase = "https://github.com/etcd-io/etcd/releases/download";

  etcd = config.etcd or { };

  rawVersion = toString (etcd.version or defaultVersion);
  version =
    let
      v = if builtins.substring 0 1 rawVersion == "v"
        then builtins.substring 1 (builtins.stringLength rawVersion) rawVersion
        else rawVersion;
    in
    if builtins.match "[0-9]+\\.[0-9]+\\.[0-9]+" v != null then v
    else throw "etcd.version \"${rawVersion}\" is not a release number; write MAJOR.MINOR.PATCH, e.g. \"${defaultVersion}\"";

  arch =
    let
      a = etcd.arch or "amd64";
      hint = {
        x86_64 = " (etcd calls it amd64)";
        "x86-64" = " (etcd calls it amd64)";
        aarch64 = " (etcd calls it arm64)";
      }.${a} or "";
    in
    if a == "amd64" || a == "arm64" then a
    else throw "etcd.arch \"${toString a}\" is not supported${hint}; use amd64 or arm64";

  pinnedList = builtins.concatStringsSep ", " (builtins.concatLists (map
    (v: map (a: "${v} ${a}") (builtins.attrNames pins.${v}))
    (builtins.attrNames pins)));

  pin = (pins.${version} or { }).${arch} or null;

  explicitHex =
    if etcd ? sha256 then
      (if builtins.match "[0-9a-fA-F]{64}" etcd.sha256 != null then lowerHex etcd.sha256
       else throw "etcd.sha256 \"${etcd.sha256}\" is not a SHA-256 in hex; give the 64 hex digits of the tarball's SHA-256 (sha256sum prints it)")
    else null;

  lowerHex = s: builtins.replaceStrings
    [ "A" "B" "C" "D" "E" "F" ] [ "a" "b" "c" "d" "e" "f" ] s;

  sha256Hex =
    if explicitHex != null then explicitHex
    else if pin != null then pin.hex
    else throw "etcd ${version} linux-${arch} has no pinned checksum in this etcdpack (pinned: ${pinnedList}); add `etcd.sha256` (the hex digest from the release's SHA256SUMS) to the config, or pin the release in both src/release.rs and nix/pins.nix";

  # SRI only when the hash is the pinned one; an explicit hex hash is passed to
  # fetchurl as `sha256`, which accepts hex as well.
  sri = if explicitHex == null && pin != null then pin.sri else null;

  stem = "etcd-v${version}-linux-${arch}";
  fileName = "${stem}.tar.gz";
  url = etcd.url or "${officialBase}/v${version}/${fileName}";
in
{
  inherit version arch sha256Hex sri url fileName stem;
  pinned = sri != null;
  # Arguments for nixpkgs' fetchurl: a fixed-output download of the release.
  fetchurl = { name = fileName; inherit url; }
    // (if sri != null then { hash = sri; } else { sha256 = sha256Hex; });
}
