# services.etcdpack-node: run one member from a tree that `etcdpack gen` wrote
# (out/nodes/NAME), on NixOS.
#
# The tree's files are used as generated: etcd.conf and etcd.service name the
# install directory (/opt/etcd by default), so the module links that directory
# to a store copy of the tree. The private key is the exception: it is left out
# of that copy and linked from `keyFile`, a path on the machine, so it never
# enters the Nix store.
{
  config,
  lib,
  ...
}:

let
  cfg = config.services.etcdpack-node;

  # Filtered while copying: a *-key.pem under `tree` is never read into the store.
  tree = builtins.path {
    path = cfg.tree;
    name = "etcdpack-node-tree";
    filter = path: _type: !(lib.hasSuffix "-key.pem" (baseNameOf path));
  };

  inst = cfg.installDir;
  confText = builtins.readFile "${tree}${inst}/cfg/etcd.conf";
  unitText = builtins.readFile "${tree}/usr/lib/systemd/system/etcd.service";

  # A KEY=value line of the generated etcd.conf, or a `Key=value` of the unit.
  valueOf =
    key: text:
    let
      m = builtins.match ".*\n${key}=([^\n]*)\n.*" "\n${text}\n";
    in
    if m == null then null else builtins.head m;
in
{
  options.services.etcdpack-node = {
    enable = lib.mkEnableOption "an etcd member installed from an etcdpack node tree";

    tree = lib.mkOption {
      type = lib.types.path;
      example = lib.literalExpression "./out/nodes/etcd-1";
      description = ''
        The node's directory from `etcdpack gen` (`out/nodes/NAME`). It is copied
        into the store without its `*-key.pem` files. In a flake, keep `out/`
        out of git (it is in .gitignore): a flake's git tree is copied whole.
      '';
    };

    keyFile = lib.mkOption {
      type = lib.types.str;
      example = "/var/lib/etcdpack/server-key.pem";
      description = ''
        Where the node's private key (`out/nodes/NAME${inst}/ssl/server-key.pem`)
        is on the machine at run time, placed there by your secret deployment.
        A string, not a path, so that it is never copied into the store. The
        module makes it owned by `user` with mode 0600.
      '';
    };

    user = lib.mkOption {
      type = lib.types.str;
      default = "etcd";
      description = "The user etcd runs as; must be the tree's `service.user`.";
    };

    dataDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/etcd/default.etcd";
      description = "etcd's data directory; must be the tree's `paths.data_dir`.";
    };

    installDir = lib.mkOption {
      type = lib.types.str;
      default = "/opt/etcd";
      description = "The tree's `paths.install_dir`, where etcd.conf and the unit look for files.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = builtins.pathExists "${tree}${inst}/bin/etcd";
        message = "services.etcdpack-node.tree has no ${inst}/bin/etcd: give out/nodes/NAME from `etcdpack gen`, and set installDir to its paths.install_dir.";
      }
      {
        assertion = valueOf "ETCD_DATA_DIR" confText == cfg.dataDir;
        message = "services.etcdpack-node.dataDir is ${cfg.dataDir}, but the tree's etcd.conf says ${toString (valueOf "ETCD_DATA_DIR" confText)}: set dataDir to match, or change paths.data_dir and run `etcdpack gen` again.";
      }
      {
        assertion = valueOf "User" unitText == cfg.user;
        message = "services.etcdpack-node.user is ${cfg.user}, but the tree's etcd.service runs as ${toString (valueOf "User" unitText)}: set user to match, or change service.user and run `etcdpack gen` again.";
      }
      {
        assertion = !lib.hasPrefix builtins.storeDir cfg.keyFile;
        message = "services.etcdpack-node.keyFile is in the Nix store, where every user can read it: deploy the key to a private path instead.";
      }
      {
        assertion = !(config.services.etcd.enable or false);
        message = "services.etcdpack-node and services.etcd both define etcd.service: enable one of them.";
      }
    ];

    users.users = lib.mkIf (cfg.user != "root") {
      ${cfg.user} = {
        isSystemUser = true;
        group = cfg.user;
        home = cfg.dataDir;
      };
    };
    users.groups = lib.mkIf (cfg.user != "root") { ${cfg.user} = { }; };

    systemd.tmpfiles.rules = [
      "d ${inst} 0755 root root -"
      "L+ ${inst}/bin - - - - ${tree}${inst}/bin"
      "L+ ${inst}/cfg - - - - ${tree}${inst}/cfg"
      "d ${inst}/ssl 0755 root root -"
      "L+ ${inst}/ssl/ca.pem - - - - ${tree}${inst}/ssl/ca.pem"
      "L+ ${inst}/ssl/server.pem - - - - ${tree}${inst}/ssl/server.pem"
      "L+ ${inst}/ssl/server-key.pem - - - - ${cfg.keyFile}"
      "z ${cfg.keyFile} 0600 ${cfg.user} ${cfg.user} -"
      "d ${cfg.dataDir} 0700 ${cfg.user} ${cfg.user} -"
    ];

    # The generated unit, unchanged: its EnvironmentFile and ExecStart point
    # into installDir, which the rules above provide.
    systemd.units."etcd.service" = {
      text = unitText;
      wantedBy = [ "multi-user.target" ];
    };

    # NixOS does not read /etc/profile.d; the etcdctl profile goes here.
    environment.interactiveShellInit = builtins.readFile "${tree}/etc/profile.d/etcdctl.sh";
  };
}
