//! The YAML as written: a strict serde mirror (`deny_unknown_fields`) that
//! keeps the source position of every value a later check may complain about.
//! Nothing here applies defaults or judges values; see `validate`.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::units::Quantity;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub version: S<u32>,
    pub cluster: RawCluster,
    #[serde(default)]
    pub etcd: RawEtcd,
    pub nodes: S<Vec<RawNode>>,
    #[serde(default)]
    pub tuning: RawTuning,
    #[serde(default)]
    pub pki: RawPki,
    pub clients: Option<Vec<RawClient>>,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub service: RawService,
    #[serde(default)]
    pub packages: RawPackages,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: S<String>,
    pub token: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEtcd {
    pub version: Option<S<String>>,
    pub arch: Option<S<String>>,
    pub sha256: Option<S<String>>,
    pub url: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: S<String>,
    pub ip: S<String>,
    #[serde(default)]
    pub sans: Vec<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTuning {
    pub heartbeat_interval: Option<S<Quantity>>,
    pub election_timeout: Option<S<Quantity>>,
    pub quota_backend_bytes: Option<S<Quantity>>,
    pub auto_compaction_retention: Option<S<Quantity>>,
    pub enable_v2: Option<bool>,
    pub insecure_localhost_listener: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPki {
    pub algorithm: Option<S<String>>,
    pub validity: Option<S<Quantity>>,
    #[serde(default)]
    pub subject: RawSubject,
    pub ca_cert: Option<S<String>>,
    pub ca_key: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    #[serde(rename = "C")]
    pub country: Option<String>,
    #[serde(rename = "ST")]
    pub state: Option<String>,
    #[serde(rename = "L")]
    pub locality: Option<String>,
    #[serde(rename = "O")]
    pub organization: Option<String>,
    #[serde(rename = "OU")]
    pub organizational_unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub name: S<String>,
    pub organization: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    pub install_dir: Option<S<String>>,
    pub data_dir: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub user: Option<S<String>>,
    pub start: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    pub formats: Option<S<Vec<String>>>,
    pub name: Option<S<String>>,
    pub maintainer: Option<S<String>>,
    pub homepage: Option<S<String>>,
}
