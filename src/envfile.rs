//! systemd's EnvironmentFile rules, so that what etcd will really receive can
//! be checked: the recipe this tool replaces failed exactly here (systemd keeps
//! `# text` after a value as part of the value).
//!
//! Rules (systemd.exec(5), `parse_env_file`): blank lines and lines whose first
//! non-blank character is `#` or `;` are ignored; `KEY=VALUE` with blanks
//! around the key and before the value dropped; in an unquoted value a
//! backslash escapes the next character, a trailing backslash continues the
//! line, and trailing blanks are dropped; `'…'` is literal; in `"…"` a
//! backslash escapes `"`, `\`, `` ` ``, `$` and newline. Nothing after a value
//! is a comment.

use anyhow::{Result, bail};

/// Parse EnvironmentFile text into its assignments, in order (a later
/// assignment to the same key wins in systemd; duplicates are kept here so
/// that callers can reject them).
pub fn parse(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line_no = 1;
    while i < chars.len() {
        // Skip leading blanks.
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t' || chars[i] == '\r') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '\n' {
            i += 1;
            line_no += 1;
            continue;
        }
        if chars[i] == '#' || chars[i] == ';' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start_line = line_no;
        let mut key = String::new();
        while i < chars.len() && chars[i] != '=' && chars[i] != '\n' {
            key.push(chars[i]);
            i += 1;
        }
        if i >= chars.len() || chars[i] == '\n' {
            bail!("line {start_line}: \"{}\" is not KEY=VALUE", key.trim());
        }
        i += 1; // '='
        let key = key.trim().to_owned();
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || key.starts_with(|c: char| c.is_ascii_digit())
        {
            bail!("line {start_line}: \"{key}\" is not a valid variable name");
        }
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let mut value = String::new();
        // Length of `value` up to the last character that may not be trimmed.
        let mut keep = 0;
        while i < chars.len() && chars[i] != '\n' {
            match chars[i] {
                '\'' => {
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        if chars[i] == '\n' {
                            line_no += 1;
                        }
                        value.push(chars[i]);
                        i += 1;
                    }
                    if i >= chars.len() {
                        bail!("line {start_line}: unterminated '…' in {key}");
                    }
                    i += 1;
                    keep = value.len();
                }
                '"' => {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        if chars[i] == '\\' && i + 1 < chars.len() {
                            let next = chars[i + 1];
                            match next {
                                '\n' => line_no += 1,
                                '"' | '\\' | '`' | '$' => value.push(next),
                                _ => {
                                    value.push('\\');
                                    value.push(next);
                                }
                            }
                            i += 2;
                            continue;
                        }
                        if chars[i] == '\n' {
                            line_no += 1;
                        }
                        value.push(chars[i]);
                        i += 1;
                    }
                    if i >= chars.len() {
                        bail!("line {start_line}: unterminated \"…\" in {key}");
                    }
                    i += 1;
                    keep = value.len();
                }
                '\\' => {
                    if i + 1 < chars.len() {
                        if chars[i + 1] == '\n' {
                            line_no += 1;
                        } else {
                            value.push(chars[i + 1]);
                            keep = value.len();
                        }
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                c => {
                    value.push(c);
                    if c != ' ' && c != '\t' && c != '\r' {
                        keep = value.len();
                    }
                    i += 1;
                }
            }
        }
        value.truncate(keep);
        out.push((key, value));
    }
    Ok(out)
}

/// Check text that etcdpack renders as an EnvironmentFile: it must parse, set
/// each key once, and every value must be exactly the text after `=` on its
/// line (no quoting, escaping or trailing text that systemd would reinterpret).
pub fn lint(text: &str) -> Result<Vec<(String, String)>> {
    let vars = parse(text)?;
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &vars {
        if !seen.insert(k.as_str()) {
            bail!("{k} is set twice");
        }
    }
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            bail!("line {}: not KEY=VALUE", n + 1);
        };
        if v.contains(['#', ' ', '\t', '"', '\'', '\\', '$', '`']) || k != k.trim() {
            bail!(
                "line {}: the value of {k} has blanks, quotes, escapes or `#`; systemd would keep them as part of the value (comments belong on their own line)",
                n + 1
            );
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    #[test]
    fn inline_comment_is_part_of_the_value() {
        // The recipe's own line: systemd hands etcd the comment too.
        assert_eq!(
            kv("ETCD_NAME=\"etcd-1\"   # node name\n"),
            vec![("ETCD_NAME".into(), "etcd-1   # node name".into())]
        );
        assert_eq!(
            kv("ETCD_QUOTA_BACKEND_BYTES=8589934592 # 8G\n")[0].1,
            "8589934592 # 8G"
        );
    }

    #[test]
    fn comments_blanks_quotes_and_continuations() {
        let text = "# c\n; c\n\n  A = 1  \nB='x y'\nC=\"q\\\"d\\n\"\nD=a\\\nb\nE=\n";
        assert_eq!(
            kv(text),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x y".into()),
                ("C".into(), "q\"d\\n".into()),
                ("D".into(), "ab".into()),
                ("E".into(), "".into()),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse("JUSTAWORD\n").is_err());
        assert!(parse("1A=x\n").is_err());
        assert!(parse("A=\"open\n").is_err());
    }

    #[test]
    fn lint_rejects_what_the_recipe_did() {
        assert!(lint("ETCD_NAME=etcd-1 # name\n").is_err());
        assert!(
            lint("A=1\nA=2\n")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert_eq!(lint("# ok\nA=1\n").unwrap(), vec![("A".into(), "1".into())]);
    }
}
