//! Package relations shared by the .deb and the .rpm.
//!
//! Every etcdpack node package installs the same paths (`etcd.service`, the
//! install dir), so two of them on one machine can only be a mistake: another
//! member's package, or a member of another cluster. Each package therefore
//! provides and conflicts with one virtual name that all of them share; both
//! dpkg and rpm ignore a package's conflict with its own provides, and an
//! upgrade of the same package is not a conflict. The package manager then
//! refuses (dpkg, rpm) or offers to swap (apt, dnf) instead of failing halfway
//! through unpacking on a file clash. The per-cluster name is provided too, so
//! `apt`/`dnf` can tell which cluster a machine belongs to.
//!
//! Distribution packages that ship an `etcd.service` of their own conflict as
//! well; which ones is the format's business.

use super::PackageSpec;

/// Shared by every etcdpack node package, of any cluster.
pub const MEMBER: &str = "etcdpack-member";

/// Names every node package provides.
pub fn provides(spec: &PackageSpec) -> Vec<String> {
    vec![
        MEMBER.to_owned(),
        format!("etcdpack-{}-member", spec.cluster),
    ]
}

/// Names every node package conflicts with, besides the format's distro ones.
pub fn conflicts() -> Vec<String> {
    vec![MEMBER.to_owned()]
}
