//! The maintenance units a node gets beside etcd.service.

use serde::Serialize;

use crate::config::Cluster;

/// The maintenance units beside etcd.service: the daily certificate check
/// every node gets, the backups when `backup.enabled`, the scheduled
/// defragmentation when `defrag.enabled`. Each unit file is
/// rendered from the template of its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum MaintUnit {
    CertCheckService,
    CertCheckTimer,
    BackupService,
    BackupTimer,
    DefragService,
    DefragTimer,
    RestartService,
    RestartPath,
    AuthService,
    AuthPath,
}

impl MaintUnit {
    pub const ALL: [MaintUnit; 10] = [
        MaintUnit::CertCheckService,
        MaintUnit::CertCheckTimer,
        MaintUnit::BackupService,
        MaintUnit::BackupTimer,
        MaintUnit::DefragService,
        MaintUnit::DefragTimer,
        MaintUnit::RestartService,
        MaintUnit::RestartPath,
        MaintUnit::AuthService,
        MaintUnit::AuthPath,
    ];

    /// The unit's name, which is also its template's.
    pub fn name(self) -> &'static str {
        match self {
            MaintUnit::CertCheckService => "etcd-cert-check.service",
            MaintUnit::CertCheckTimer => "etcd-cert-check.timer",
            MaintUnit::BackupService => "etcd-backup.service",
            MaintUnit::BackupTimer => "etcd-backup.timer",
            MaintUnit::DefragService => "etcd-defrag.service",
            MaintUnit::DefragTimer => "etcd-defrag.timer",
            MaintUnit::RestartService => "etcd-restart.service",
            MaintUnit::RestartPath => "etcd-restart.path",
            MaintUnit::AuthService => "etcd-auth.service",
            MaintUnit::AuthPath => "etcd-auth.path",
        }
    }

    /// A timer, or a path unit, which the package scripts enable and
    /// start (its service only runs when it fires).
    pub fn is_timer(self) -> bool {
        matches!(
            self,
            MaintUnit::CertCheckTimer
                | MaintUnit::BackupTimer
                | MaintUnit::DefragTimer
                | MaintUnit::RestartPath
                | MaintUnit::AuthPath
        )
    }

    /// Whether a node of `cluster` gets this unit.
    pub fn shipped(self, cluster: &Cluster) -> bool {
        match self {
            MaintUnit::CertCheckService | MaintUnit::CertCheckTimer => true,
            MaintUnit::BackupService | MaintUnit::BackupTimer => cluster.backup.enabled,
            MaintUnit::DefragService | MaintUnit::DefragTimer => cluster.defrag.enabled,
            MaintUnit::RestartService | MaintUnit::RestartPath => true,
            MaintUnit::AuthService | MaintUnit::AuthPath => cluster.auth.enabled,
        }
    }

    /// The units a node of `cluster` gets, in [`MaintUnit::ALL`] order.
    pub fn of(cluster: &Cluster) -> Vec<MaintUnit> {
        MaintUnit::ALL
            .into_iter()
            .filter(|u| u.shipped(cluster))
            .collect()
    }
}
