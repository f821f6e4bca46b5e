# The development shell: the Rust toolchain and every tool the test suite runs
# (the Nix counterpart of .ci/install-deps).
{ pkgs }:

let
  inherit (pkgs) lib;
  # Tools that nixpkgs may lack, or not build, on some system: included where
  # they exist, so the shell still evaluates everywhere. The tests that need a
  # missing tool fail and say which one.
  ifAvailable =
    names:
    builtins.concatMap (
      name:
      lib.optional (
        pkgs ? ${name} && lib.meta.availableOn pkgs.stdenv.hostPlatform pkgs.${name}
      ) pkgs.${name}
    ) names;
in
pkgs.mkShell {
  packages =
    (with pkgs; [
      cargo
      rustc
      clippy
      rustfmt
      etcd
      cfssl
      openssl
      dpkg
      rpm
      systemd # systemd-analyze
      nix
    ])
    ++ ifAvailable [
      "lintian"
      "rpmlint"
      "debootstrap"
      "createrepo_c"
      "dnf5"
    ];
  # Same source build of AWS-LC as the package.
  AWS_LC_SYS_USE_SYSTEM = "0";
}
