use serde::Serialize;

/// Where things go on a node, derived from `paths.install_dir`.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub install_dir: String,
    pub bin_dir: String,
    pub cfg_dir: String,
    pub ssl_dir: String,
    pub etcd_bin: String,
    pub etcdctl_bin: String,
    /// 3.5 and later only.
    pub etcdutl_bin: String,
    /// The maintenance script: quota recovery, certificate check, backups.
    pub maint_bin: String,
    pub conf_file: String,
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    /// The key sealed to the host key, which install unseals into `key_file`.
    pub sealed_key_file: String,
}

impl Layout {
    /// Where the package's systemd units go: etcd.service and, beside it,
    /// the maintenance timers and their services.
    pub const UNIT_DIR: &'static str = "/usr/lib/systemd/system";
    pub const UNIT_FILE: &'static str = "/usr/lib/systemd/system/etcd.service";
    pub const PROFILE_FILE: &'static str = "/etc/profile.d/etcdctl.sh";
    /// A restart of the member asked for and not done yet, with when and
    /// why (`etcd-maint restart`); etcd-restart.path watches it.
    pub const RESTART_PENDING: &'static str = "/var/lib/etcdpack/restart-pending";
    /// The key of the cluster's restart lock, in etcd (etcd's lock: its
    /// holder's key below it, on a lease).
    pub const RESTART_LOCK: &'static str = "/etcdpack/locks/restart";
    /// The access policy asked to be applied and not applied yet
    /// (`etcd-maint auth request`); etcd-auth.path watches it.
    pub const AUTH_PENDING: &'static str = "/var/lib/etcdpack/auth-pending";
    /// The key of the lock `etcd-maint auth apply` holds while it changes
    /// the cluster's users and roles.
    pub const AUTH_LOCK: &'static str = "/etcdpack/locks/auth";

    /// The path of the unit file `name` (`etcd-backup.timer`).
    pub fn unit_file(name: &str) -> String {
        format!("{}/{name}", Layout::UNIT_DIR)
    }

    pub fn new(install_dir: &str) -> Self {
        let base = install_dir;
        let bin_dir = format!("{base}/bin");
        let cfg_dir = format!("{base}/cfg");
        let ssl_dir = format!("{base}/ssl");
        Layout {
            install_dir: base.to_owned(),
            etcd_bin: format!("{bin_dir}/etcd"),
            etcdctl_bin: format!("{bin_dir}/etcdctl"),
            etcdutl_bin: format!("{bin_dir}/etcdutl"),
            maint_bin: format!("{bin_dir}/etcd-maint"),
            conf_file: format!("{cfg_dir}/etcd.conf"),
            ca_file: format!("{ssl_dir}/ca.pem"),
            cert_file: format!("{ssl_dir}/server.pem"),
            key_file: format!("{ssl_dir}/server-key.pem"),
            sealed_key_file: format!("{ssl_dir}/server-key.pem.age"),
            bin_dir,
            cfg_dir,
            ssl_dir,
        }
    }
}

/// Who owns an entry on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Root,
    /// The service user (`service.user`), e.g. for private keys.
    Service,
}

/// The output directory's layout, relative to `--out`. Every path that a
/// manifest, a plan or a marker records is spelled by these functions.
pub mod out {
    pub const PKI: &str = "pki";
    pub const NODES: &str = "nodes";
    pub const DIST: &str = "dist";
    pub const SUMS: &str = "SHA256SUMS";
    pub const MANIFEST: &str = "manifest.json";
    /// Where `rotate-ca retire` archives the CA it retires, outside `pki/`
    /// (0700; its key 0600).
    pub const RETIRED_CA: &str = "retired-ca";
    /// The Prometheus files written for the cluster (see
    /// `render::monitoring`).
    pub const MONITORING: &str = "monitoring";
    /// Present while a `gen` run is writing; removed when it has finished.
    pub const INCOMPLETE: &str = ".incomplete";

    /// `nodes/<node>`: the node's staged tree.
    pub fn tree(node: &str) -> String {
        format!("{NODES}/{node}")
    }

    /// `dist/<file>`: an artifact.
    pub fn artifact(file_name: &str) -> String {
        format!("{DIST}/{file_name}")
    }

    /// `monitoring/<file>`: a file for the cluster's Prometheus.
    pub fn monitoring(file: &str) -> String {
        format!("{MONITORING}/{file}")
    }

    /// `pki/<file>`: a file of the PKI, `file` relative to the PKI directory.
    pub fn pki(file: &str) -> String {
        format!("{PKI}/{file}")
    }
}

/// One file on a node as a run records it (in `manifest.json`) and a plan
/// compares it: everything about it that reaches the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FileRecord {
    /// sha256 of the contents, lower-case hex.
    pub sha256: String,
    /// Octal, four digits: `0644`.
    pub mode: String,
    pub owner: Owner,
    /// Tracked by the package manager as a configuration file.
    #[serde(default)]
    pub config: bool,
}

impl FileRecord {
    pub fn new(content_sha256: String, mode: u32, owner: Owner, config: bool) -> Self {
        FileRecord {
            sha256: content_sha256,
            mode: format!("{mode:04o}"),
            owner,
            config,
        }
    }
}
