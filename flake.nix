{
  description = "etcdpack: turn one YAML description of an etcd cluster into per-node TLS-ready packages";

  # etcdpack needs rustc >= 1.89 (Cargo.toml's rust-version).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        etcdpack = pkgs.callPackage ./nix/package.nix { };
        default = etcdpack;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = nixpkgs.lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          meta.description = "etcdpack";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = import ./nix/shell.nix { inherit pkgs; };
      });

      checks = forAllSystems (pkgs: {
        build = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        tests = pkgs.callPackage ./nix/package.nix { runTests = true; };
      });

      # lib.etcdRelease { pkgs, version, arch } and
      # lib.mkClusterArtifacts { pkgs, config, allowKeysInStore, ... }: see docs/nix.md.
      lib = import ./nix/lib.nix { inherit self; };

      nixosModules = {
        etcdpack-node = import ./nix/module.nix;
        default = self.nixosModules.etcdpack-node;
      };
    };
}
