//! The real clients of a published repository, each with a state of its
//! own in a temporary directory: nothing of the host's configuration, lists
//! or keys plays a part, and the client files etcdpack published are used
//! as a machine would use them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::ok;

/// An apt of its own: sources, lists, cache, status and keys in a temp
/// dir; the `.sources` file publish wrote is its only source.
pub struct Apt {
    pub dir: tempfile::TempDir,
}

impl Apt {
    pub fn new(sources: &Path) -> Apt {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "etc/sources.list.d",
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/trusted.gpg.d",
            "state/lists/partial",
            "cache/archives/partial",
        ] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        fs::write(dir.path().join("status"), "").unwrap();
        fs::copy(
            sources,
            dir.path()
                .join("etc/sources.list.d")
                .join(sources.file_name().unwrap()),
        )
        .unwrap();
        Apt { dir }
    }

    /// `tool` (apt-get, apt-cache) with this apt's state.
    pub fn run(&self, tool: &str, args: &[&str]) -> Output {
        let d = self.dir.path().display();
        let mut c = Command::new(tool);
        for o in [
            format!("Dir::Etc::Parts={d}/etc/apt.conf.d"),
            format!("Dir::Etc::PreferencesParts={d}/etc/preferences.d"),
            "Dir::Etc::SourceList=/dev/null".to_owned(),
            format!("Dir::Etc::SourceParts={d}/etc/sources.list.d"),
            format!("Dir::Etc::TrustedParts={d}/etc/trusted.gpg.d"),
            format!("Dir::Etc::Trusted={d}/etc/trusted.gpg"),
            format!("Dir::State={d}/state"),
            format!("Dir::State::status={d}/status"),
            format!("Dir::Cache={d}/cache"),
            "APT::Sandbox::User=root".to_owned(),
            "Debug::NoLocking=1".to_owned(),
            "Acquire::Languages=none".to_owned(),
            "APT::Architecture=amd64".to_owned(),
            "APT::Architectures=amd64".to_owned(),
        ] {
            c.arg("-o").arg(o);
        }
        c.args(args).current_dir(self.dir.path());
        c.output().unwrap()
    }

    pub fn update(&self) -> Output {
        self.run("apt-get", &["update"])
    }

    /// apt's candidate version of `package`.
    pub fn candidate(&self, package: &str) -> String {
        let out = ok(self.run("apt-cache", &["policy", package]));
        out.lines()
            .find_map(|l| l.trim().strip_prefix("Candidate: "))
            .unwrap_or_else(|| panic!("no candidate for {package}:\n{out}"))
            .to_owned()
    }
}

/// A dnf of its own: configuration, repositories, cache and rpm database
/// under one installroot. The `.repo` file publish wrote is its only
/// repository and says everything about checking it: the main
/// configuration sets no `gpgcheck`. dnf reads the key the `.repo` file
/// names from the machine, not the installroot, so it runs in a mount
/// namespace of its own where the test's key directory is
/// `/etc/pki/rpm-gpg`, the key put there as the README tells.
pub struct Dnf {
    pub dir: tempfile::TempDir,
}

impl Dnf {
    pub fn new(repo_file: &Path) -> Dnf {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in ["etc/yum.repos.d", "etc/dnf", "var/cache/dnf"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(
            root.join("etc/dnf/dnf.conf"),
            "[main]\ninstall_weak_deps=0\nkeepcache=0\n",
        )
        .unwrap();
        fs::copy(
            repo_file,
            root.join("etc/yum.repos.d")
                .join(repo_file.file_name().unwrap()),
        )
        .unwrap();
        let keys = dir.path().join("rpm-gpg");
        fs::create_dir_all(&keys).unwrap();
        let key = repo_file.with_extension("asc");
        if key.exists() {
            let text = fs::read_to_string(repo_file).unwrap();
            let at = text
                .lines()
                .find_map(|l| l.strip_prefix("gpgkey=file:///etc/pki/rpm-gpg/"))
                .expect("a signed .repo names its key file in /etc/pki/rpm-gpg");
            fs::copy(&key, keys.join(at)).unwrap();
        }
        Dnf { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let root = self.root();
        fs::create_dir_all("/etc/pki/rpm-gpg").unwrap();
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/pki/rpm-gpg && exec dnf \"$@\"")
            .arg(self.dir.path().join("rpm-gpg"))
            .arg("--installroot")
            .arg(&root)
            .arg("--config")
            .arg(root.join("etc/dnf/dnf.conf"))
            .arg(format!(
                "--setopt=reposdir={}",
                root.join("etc/yum.repos.d").display()
            ))
            .args(["--releasever=1", "--disableplugin=*", "-y"])
            // The packages' scripts would run the root's useradd and
            // systemctl, which this root has not got.
            .arg("--setopt=tsflags=noscripts")
            .args(args)
            .output()
            .unwrap()
    }

    /// Fetch the metadata again, from nothing.
    pub fn makecache(&self) -> Output {
        let _ = fs::remove_dir_all(self.root().join("var/cache/dnf"));
        self.run(&["makecache"])
    }

    /// `version-release` of `package` as the root's rpm database has it.
    pub fn installed(&self, package: &str) -> String {
        let out = Command::new("rpm")
            .arg("--root")
            .arg(self.root())
            .args(["-q", "--qf", "%{VERSION}-%{RELEASE}", package])
            .output()
            .unwrap();
        ok(out)
    }
}
