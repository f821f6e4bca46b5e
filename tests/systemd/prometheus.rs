//! A real Prometheus on the host, scraping a booted cluster's metrics
//! listeners with the scrape config, targets and rules `gen` wrote to
//! `OUT/monitoring/`, and asked through its HTTP API.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcdpack::render::{alerts, monitoring};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::e2e;

pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    /// host:port of its web API.
    pub address: String,
}

impl Prometheus {
    /// Prometheus on `address`, scraping and evaluating every second, with
    /// the generated scrape config and targets, and the generated rules
    /// with etcdMembersDown's `for` shortened to `members_down_for` (the
    /// mixin's 20 minutes is the generator's default; it takes each
    /// alert's `for` as a parameter).
    pub fn start(c: &Cluster, address: &str, members_down_for: Duration) -> Prometheus {
        let dir = c.scratch.join("prometheus");
        let cluster = etcdpack::config::load(&c.generated.config, &Default::default()).unwrap();
        let own = dir.join(monitoring::dir_on_server(&cluster));
        std::fs::create_dir_all(&own).unwrap();
        let generated = c.generated.out.join("monitoring");
        for f in [monitoring::SCRAPE_CONFIG, monitoring::TARGETS] {
            std::fs::copy(generated.join(f), own.join(f)).unwrap();
        }
        let mut rules = alerts::alerts(&cluster);
        for a in rules.iter_mut().filter(|a| a.name == "etcdMembersDown") {
            a.for_ = members_down_for;
        }
        std::fs::write(
            own.join(monitoring::RULES),
            alerts::rules_yaml(&cluster, &rules),
        )
        .unwrap();
        let fragment = std::fs::read_to_string(own.join(monitoring::SCRAPE_CONFIG)).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{fragment}"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Prometheus {
            child,
            dir,
            address: address.to_owned(),
        }
    }

    /// `GET /api/v1/PATH`'s `data`, if Prometheus answers.
    pub fn api(&self, path: &str) -> Option<Value> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2"])
            .arg(format!("http://{}/api/v1/{path}", self.address))
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["status"] == "success").then(|| v["data"].clone())
    }

    /// Every active target's (`node` label, health).
    pub fn targets(&self) -> Vec<(String, String)> {
        let Some(data) = self.api("targets") else {
            return Vec::new();
        };
        data["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["labels"]["node"].as_str().unwrap_or_default().to_owned(),
                    t["health"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The state (`pending`, `firing`) of alert `name`, if it is active.
    pub fn alert_state(&self, name: &str) -> Option<String> {
        let data = self.api("alerts")?;
        data["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .and_then(|a| a["state"].as_str().map(str::to_owned))
    }

    /// Wait until alert `name` is in `state`.
    pub fn wait_alert(&self, name: &str, state: &str, within: Duration) {
        let seen = e2e::wait_for(within, || {
            (self.alert_state(name).as_deref() == Some(state)).then_some(())
        });
        assert!(
            seen.is_some(),
            "{name} not {state} within {within:?}: {:?}\n{}",
            self.api("alerts"),
            self.log()
        );
    }

    /// What Prometheus logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
