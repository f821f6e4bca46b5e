//! Human-friendly quantities in the config: durations ("100ms", "1h") and
//! byte sizes ("8GiB"). Bare integers are accepted in etcd's own unit for
//! each setting, so a value copied from an etcd flag keeps its meaning.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A scalar as written: a bare integer or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quantity {
    Int(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string with a unit such as \"100ms\" or \"8GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::Int(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                u64::try_from(v)
                    .map(Quantity::Int)
                    .map_err(|_| E::custom(format!("{v} is negative; a quantity must be positive")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// In the schema: a whole number or a string; which units the string may
/// carry is said by each setting's description.
impl schemars::JsonSchema for Quantity {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["integer", "string"],
            "minimum": 0
        })
    }
}

/// Parse a duration: a sequence of `<number><unit>` with units ms, s, m, h, d
/// (e.g. "1h30m", "100ms", "87600h"). A bare integer means `bare_unit`.
pub fn parse_duration(q: &Quantity, bare_unit: Duration) -> Result<Duration, String> {
    let text = match q {
        Quantity::Int(n) => {
            return bare_unit
                .checked_mul(u32::try_from(*n).map_err(|_| format!("{n} is too large"))?)
                .ok_or_else(|| format!("{n} is too large"));
        }
        Quantity::Text(t) => t.trim(),
    };
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = text.parse::<u64>() {
        return parse_duration(&Quantity::Int(n), bare_unit);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("\"{text}\" is not a duration"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("\"{text}\" is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let per = match unit {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86400),
            "" => return Err(format!("\"{text}\" has a number without a unit")),
            other => {
                return Err(format!(
                    "\"{text}\" has an unknown unit \"{other}\" (use ms, s, m, h or d)"
                ));
            }
        };
        let part = per
            .checked_mul(u32::try_from(n).map_err(|_| format!("\"{text}\" is too large"))?)
            .ok_or_else(|| format!("\"{text}\" is too large"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("\"{text}\" is too large"))?;
    }
    Ok(total)
}

/// Parse a byte size: an integer with an optional unit B, KB, MB, GB, TB
/// (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024). A bare integer is bytes.
pub fn parse_size(q: &Quantity) -> Result<u64, String> {
    let text = match q {
        Quantity::Int(n) => return Ok(*n),
        Quantity::Text(t) => t.trim(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if split == 0 {
        return Err(format!("\"{text}\" is not a size"));
    }
    let n: u64 = text[..split]
        .parse()
        .map_err(|_| format!("\"{text}\" is too large"))?;
    let mult: u64 = match text[split..].trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000u64.pow(2),
        "GB" => 1000u64.pow(3),
        "TB" => 1000u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "\"{text}\" has an unknown unit \"{other}\" (use B, KB, MB, GB, KiB, MiB, GiB or TiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("\"{text}\" is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Quantity {
        Quantity::Text(s.into())
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis(1);
        assert_eq!(
            parse_duration(&t("100ms"), ms),
            Ok(Duration::from_millis(100))
        );
        assert_eq!(
            parse_duration(&t("1h30m"), ms),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration(&t("87600h"), ms),
            Ok(Duration::from_secs(87600 * 3600))
        );
        assert_eq!(
            parse_duration(&Quantity::Int(250), ms),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration(&t("2"), Duration::from_secs(3600)),
            Ok(Duration::from_secs(7200))
        );
        assert!(
            parse_duration(&t("10 parsecs"), ms)
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration(&t("ms"), ms).is_err());
        assert!(parse_duration(&t(""), ms).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&t("8GiB")), Ok(8 << 30));
        assert_eq!(parse_size(&t("2GB")), Ok(2_000_000_000));
        assert_eq!(parse_size(&Quantity::Int(8589934592)), Ok(8589934592));
        assert!(
            parse_size(&t("8 gigs"))
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_size(&t("99999999999999TiB"))
                .unwrap_err()
                .contains("too large")
        );
    }
}
