# etcdpack itself. `runTests = true` is the flake's `checks.<system>.tests`:
# the same build with the test suite, minus the tests the sandbox cannot run.
{
  lib,
  rustPlatform,
  nix,
  openssl,
  runTests ? false,
}:

let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "etcdpack";
  inherit (cargoToml.package) version;

  # Only what cargo reads: a change to the docs or the flake does not rebuild.
  # nix/ is here because tests/nix.rs evaluates nix/pins.nix and nix/args.nix.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../templates
      ../tests
      ../nix
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # rcgen's aws_lc_rs feature builds AWS-LC through aws-lc-sys. On
  # x86_64/aarch64-linux-gnu it compiles the C sources with the `cc` crate and
  # uses bindings shipped in the crate, so stdenv's C compiler is all it needs:
  # no cmake, perl, go, nasm or libclang (those are for FIPS builds, other
  # targets, or regenerating bindings). USE_SYSTEM=0 keeps it from adopting an
  # AWS-LC it happens to find, so every build compiles the same sources.
  env = {
    AWS_LC_SYS_USE_SYSTEM = "0";
  }
  // lib.optionalAttrs runTests {
    # Tests gated on a tool fail instead of skipping when CI is set, and insta
    # fails on a changed snapshot instead of writing a .snap.new.
    CI = "true";
    INSTA_UPDATE = "no";
  };

  doCheck = runTests;
  # tests/nix.rs runs nix-instantiate (pure evaluation, no store writes);
  # tests/cli.rs checks certificates with openssl.
  nativeCheckInputs = [
    nix
    openssl
  ];
  # Skipped in the sandbox, run by .ci/run on a Debian machine instead:
  checkFlags = map (t: "--skip=${t}") [
    # compares the bundled binary with /usr/bin/etcd and runs systemd-analyze
    "gen_over_http_then_check_everything_with_real_tools"
    # install.sh chowns files to a new `etcd` user: needs root
    "install_sh_places_files_is_idempotent_and_refuses_another_node"
    # starts three live etcd members on 127.0.0.1-3 with FHS runtime libraries
    "three_bundles_form_a_tls_cluster"
  ];
  preCheck = ''
    export HOME="$TMPDIR"
  '';

  meta = {
    description = cargoToml.package.description;
    homepage = cargoToml.package.repository;
    license = lib.licenses.asl20;
    mainProgram = "etcdpack";
    platforms = [
      "x86_64-linux"
      "aarch64-linux"
    ];
  };
}
