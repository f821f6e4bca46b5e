//! Running `etcdpack gen` on a generated config against the stand-in
//! release, served once per test process on 127.0.0.1; a bundle it made,
//! unpacked, and a bare root for its `install.sh --root`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::{HttpServer, etcdpack, ok, run_ok, standin};

/// The stand-in release at its official path, for `--mirror`.
pub fn mirror() -> &'static str {
    static SERVER: OnceLock<HttpServer> = OnceLock::new();
    let s = standin();
    &SERVER
        .get_or_init(|| {
            HttpServer::serve_file(
                &format!("/v{0}/etcd-v{0}-linux-{1}.tar.gz", s.version, s.arch),
                &s.path,
            )
        })
        .base_url
}

/// A config for cluster `test` with nodes etcd-1.. on `ips`, in a temp dir.
pub struct Gen {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub out: PathBuf,
    pub cache: PathBuf,
}

impl Gen {
    /// `extra` is appended as top-level YAML. Packages default to `[tar]`
    /// unless `extra` has a `packages:` section.
    pub fn new(ips: &[&str], extra: &str) -> Gen {
        let dir = tempfile::tempdir().unwrap();
        let mut yaml =
            String::from("version: 1\ncluster: { name: test, token: test-token }\nnodes:\n");
        for (i, ip) in ips.iter().enumerate() {
            yaml.push_str(&format!("  - {{ name: etcd-{}, ip: \"{ip}\" }}\n", i + 1));
        }
        // Fast keys keep the suite quick; RSA is covered by the PKI tests.
        if !extra.contains("pki:") {
            yaml.push_str("pki: { algorithm: ecdsa-p256 }\n");
        }
        if !extra.contains("packages:") {
            yaml.push_str("packages: { formats: [tar] }\n");
        }
        // Members of a test share the host's network: each one's metrics
        // listener on its own IP, never all on 127.0.0.1:2381.
        if !extra.contains("metrics:") {
            yaml.push_str("metrics: { listen: node }\n");
        }
        yaml.push_str(extra);
        let config = dir.path().join("cluster.yaml");
        std::fs::write(&config, yaml).unwrap();
        Gen {
            out: dir.path().join("out"),
            cache: dir.path().join("cache"),
            config,
            dir,
        }
    }

    /// Nodes etcd-1.. on `ips` with `packages.keys: sealed`: each node's
    /// SSH host key is made with ssh-keygen under `hosts/etcd-N/` (an
    /// `/etc/ssh` of that machine) and named in the config.
    /// `packages` is the rest of the `packages:` mapping, e.g. `formats: [deb]`.
    pub fn sealed(ips: &[&str], packages: &str) -> Gen {
        let g = Gen::new(ips, &format!("packages: {{ keys: sealed, {packages} }}\n"));
        let mut yaml = std::fs::read_to_string(&g.config).unwrap();
        for i in 1..=ips.len() {
            let public = g.make_host_key(&format!("etcd-{i}"));
            let node = format!("  - {{ name: etcd-{i}, ip: \"{}\" }}", ips[i - 1]);
            let with_key = format!(
                "  - {{ name: etcd-{i}, ip: \"{}\", ssh_host_key: \"{public}\" }}",
                ips[i - 1]
            );
            yaml = yaml.replace(&node, &with_key);
        }
        std::fs::write(&g.config, yaml).unwrap();
        g
    }

    /// A new ed25519 host key for machine `host`, at
    /// `hosts/<host>/etc/ssh/ssh_host_ed25519_key{,.pub}`; its public line.
    pub fn make_host_key(&self, host: &str) -> String {
        let ssh = self.host_root(host).join("etc/ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let key = ssh.join("ssh_host_ed25519_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(ssh.join("ssh_host_ed25519_key.pub"));
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", host, "-f"])
                .arg(&key),
        );
        let public = std::fs::read_to_string(ssh.join("ssh_host_ed25519_key.pub")).unwrap();
        public.trim().to_owned()
    }

    /// The root of machine `host`'s files (its `/etc/ssh` host keys).
    pub fn host_root(&self, host: &str) -> PathBuf {
        self.dir.path().join("hosts").join(host)
    }

    fn command(&self, out: &Path, args: &[&str]) -> Command {
        self.command_of("gen", out, args)
    }

    /// `etcdpack <sub>` (gen, or renew: it takes gen's options) on this
    /// config, output and cache.
    fn command_of(&self, sub: &str, out: &Path, args: &[&str]) -> Command {
        let mut c = etcdpack();
        c.arg(sub).arg("-c").arg(&self.config).arg("-o").arg(out);
        c.arg("--cache-dir").arg(&self.cache);
        c.args(args);
        c
    }

    /// `gen` with the stand-in: `--mirror` and `--etcd-sha256` are added
    /// unless `args` gives `--etcd-tarball`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env_into(&self.out, args, &[])
    }

    /// `gen` with exactly `args` besides config, out and cache.
    pub fn run_raw(&self, args: &[&str]) -> Output {
        self.command(&self.out, args).output().unwrap()
    }

    /// `etcdpack renew` with the stand-in, as [`run`](Self::run) for gen.
    pub fn renew(&self, args: &[&str]) -> Output {
        let s = standin();
        let mut c = self.command_of("renew", &self.out, args);
        c.arg("--mirror")
            .arg(mirror())
            .arg("--etcd-sha256")
            .arg(&s.sha256);
        c.output().unwrap()
    }

    /// `etcdpack rotate-ca PHASE` with the stand-in, as [`renew`](Self::renew).
    pub fn rotate(&self, phase: &str, args: &[&str]) -> Output {
        let s = standin();
        let mut all = vec![phase];
        all.extend_from_slice(args);
        let mut c = self.command_of("rotate-ca", &self.out, &all);
        c.arg("--mirror")
            .arg(mirror())
            .arg("--etcd-sha256")
            .arg(&s.sha256);
        c.output().unwrap()
    }

    /// `etcdpack rotate-ca PHASE` with exactly `args` besides config, out and cache.
    pub fn rotate_raw(&self, phase: &str, args: &[&str]) -> Output {
        let mut all = vec![phase];
        all.extend_from_slice(args);
        self.command_of("rotate-ca", &self.out, &all)
            .output()
            .unwrap()
    }

    fn standin_command(&self, out: &Path, args: &[&str]) -> Command {
        let s = standin();
        let mut c = self.command(out, args);
        if !args.contains(&"--etcd-tarball") {
            c.arg("--mirror").arg(mirror());
        }
        if !args.contains(&"--etcd-sha256") {
            c.arg("--etcd-sha256").arg(&s.sha256);
        }
        c
    }

    fn run_env_into(&self, out: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.standin_command(out, args);
        c.envs(env.iter().copied());
        c.output().unwrap()
    }

    /// [`run`](Self::run) under the file-creation mask `umask` (octal).
    pub fn run_with_umask(&self, umask: &str, args: &[&str]) -> Output {
        let c = self.standin_command(&self.out, args);
        Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$@\""))
            .arg("sh")
            .arg(c.get_program())
            .args(c.get_args())
            .output()
            .unwrap()
    }

    /// Start `gen` in the background (stand-in release, like [`run`](Self::run)).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let s = standin();
        let mut c = self.command(&self.out, args);
        c.arg("--mirror")
            .arg(mirror())
            .arg("--etcd-sha256")
            .arg(&s.sha256);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c.spawn().unwrap()
    }

    /// Run and return stdout; panics with what it printed on failure.
    pub fn run_ok(&self, args: &[&str]) -> String {
        ok(self.run(args))
    }

    pub fn run_ok_into(&self, out: &Path, args: &[&str]) -> String {
        ok(self.run_env_into(out, args, &[]))
    }

    pub fn run_ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        ok(self.run_env_into(&self.out, args, env))
    }

    /// Node etcd-`node`'s bundle (release 1), unpacked into `into`: the
    /// bundle's directory, with its `install.sh` and `root/`.
    pub fn unpack_bundle(&self, node: u32, into: &Path) -> PathBuf {
        let stem = format!("etcd-test-etcd-{node}_3.4.16-1_amd64");
        run_ok(
            Command::new("tar")
                .arg("-xzf")
                .arg(self.out.join(format!("dist/{stem}.tar.gz")))
                .arg("-C")
                .arg(into),
        );
        into.join(stem)
    }
}

/// Permission bits of a path.
pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// An empty root for `install.sh --root` but for what useradd needs there:
/// `etc/` with passwd, group, shadow and gshadow naming root alone.
pub fn bare_root(root: &Path) {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\n").unwrap();
    std::fs::write(etc.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    std::fs::write(etc.join("gshadow"), "root:*::\n").unwrap();
}
