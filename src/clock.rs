//! The one source of time: the moment a command runs, and
//! `SOURCE_DATE_EPOCH` (reproducible builds), read once per command.

use anyhow::{Context, Result};
use time::OffsetDateTime;

/// The time a command works with.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    now: OffsetDateTime,
    /// `SOURCE_DATE_EPOCH`, when it is set.
    source_date_epoch: Option<u64>,
}

impl Clock {
    /// Now, and `SOURCE_DATE_EPOCH` as the environment gives it: a value
    /// that is not a number of seconds is an error.
    pub fn from_env() -> Result<Clock> {
        let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => Some(v.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH=\"{v}\" is not a number of seconds since 1970")
            })?),
            Err(_) => None,
        };
        Ok(Clock {
            now: OffsetDateTime::now_utc(),
            source_date_epoch,
        })
    }

    /// A clock at `now`, with `SOURCE_DATE_EPOCH` unset.
    pub fn at(now: OffsetDateTime) -> Clock {
        Clock {
            now,
            source_date_epoch: None,
        }
    }

    /// When the command runs: what certificates are checked and issued
    /// against.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// The timestamp of what is meant to come out the same on every run
    /// (archive entries, a repository's date): `SOURCE_DATE_EPOCH` when
    /// set, otherwise `fallback` (for packages, the CA certificate's
    /// notBefore, fixed for as long as `OUT/pki` is kept).
    pub fn stamp(&self, fallback: u64) -> u64 {
        self.source_date_epoch.unwrap_or(fallback)
    }

    /// The date a document carries (the man pages): `SOURCE_DATE_EPOCH`
    /// when set, otherwise today.
    pub fn date(&self) -> Result<OffsetDateTime> {
        match self.source_date_epoch {
            Some(s) => i64::try_from(s)
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .with_context(|| format!("SOURCE_DATE_EPOCH=\"{s}\" is out of range")),
            None => Ok(self.now),
        }
    }
}
