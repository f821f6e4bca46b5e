# The flake's `lib`: fetch an official etcd release by its pinned checksum, and
# run `etcdpack gen` in a derivation. `self` is the flake, for its package.
{ self }:

let
  args = import ./args.nix;

  etcdRelease =
    {
      pkgs,
      version ? "3.4.16",
      arch ? "amd64",
    }:
    pkgs.fetchurl (args { etcd = { inherit version arch; }; }).fetchurl;

  keysWarning = ''
    mkClusterArtifacts writes private keys (the CA key, every node and client
    key) into its output, and everything in the Nix store is readable by every
    user of the machine and by anyone it is copied to. Use it for test and
    development clusters, or in pipelines that move the artifacts out of the
    store at once; say so with `allowKeysInStore = true`. For a production
    cluster, run `etcdpack gen` outside Nix and keep out/pki private.
  '';
in
{
  inherit etcdRelease;

  # The pure part, for callers who want the URL and checksums without fetching.
  releaseArgs = args;

  mkClusterArtifacts =
    {
      pkgs,
      # A path to a cluster.yaml, or the same description as a Nix attrset.
      # An attrset is written with builtins.toJSON: JSON is YAML, so etcdpack
      # reads it as it is.
      config,
      # For a path `config`: the `etcd` section of that file (Nix cannot read
      # YAML). It picks the tarball; etcdpack fails if the two disagree.
      etcd ? { },
      # Required: see keysWarning.
      allowKeysInStore ? false,
      # An existing out/pki to reuse (keeps the CA and certificates stable
      # across rebuilds). A path literal is copied into the store as well.
      pki ? null,
      # e.g. [ "tar" "deb" ]; null means the config's packages.formats.
      formats ? null,
      etcdpack ? self.packages.${pkgs.stdenv.hostPlatform.system}.default,
      name ? "etcdpack-cluster",
    }:
    let
      inherit (pkgs) lib;
      isPath = builtins.isPath config || builtins.isString config;
      release = args (if isPath then { inherit etcd; } else config);
      tarball = pkgs.fetchurl release.fetchurl;
      configFile = if isPath then config else pkgs.writeText "cluster.yaml" (builtins.toJSON config);
    in
    if !allowKeysInStore then
      throw "etcdpack: ${keysWarning}"
    else
      pkgs.runCommand name
        {
          nativeBuildInputs = [ etcdpack ];
          passthru = {
            inherit release tarball configFile;
          };
          meta.description = "etcdpack gen output for ${name}; contains private keys, readable by anyone with access to the Nix store";
        }
        ''
          mkdir -p "$out"
          ${lib.optionalString (pki != null) ''
            cp -r ${pki} "$out/pki"
            chmod -R u+w "$out/pki"
            chmod 0700 "$out/pki"
            find "$out/pki" -name '*-key.pem' -exec chmod 0600 {} +
          ''}
          etcdpack gen \
            --config ${configFile} \
            --out "$out" \
            --cache-dir "$TMPDIR/cache" \
            --etcd-tarball ${tarball} \
            --etcd-sha256 ${release.sha256Hex} \
            ${lib.optionalString (formats != null) "--formats ${lib.concatStringsSep "," formats}"}
          etcdpack verify "$out"
        '';
}
