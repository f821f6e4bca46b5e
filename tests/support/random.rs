//! A small deterministic generator for the tests that aim at random
//! moments (kills, delays): the seed is printed, so a failure can be
//! replayed with `CRASH_SEED=…`.

use std::time::SystemTime;

pub struct Lcg(u64);

impl Lcg {
    /// Seeded from `CRASH_SEED` or the clock; the seed is printed.
    pub fn seeded() -> (Lcg, u64) {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("CRASH_SEED={seed}");
        (Lcg(seed), seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}
