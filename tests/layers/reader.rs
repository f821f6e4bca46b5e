//! Reading the sources: which files count, their text without comments, literals and test
//! modules, and every crate-internal path they name, made absolute.

use std::path::Path;

/// Where a reference is: a file relative to the crate root, and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One source file: its path (`src/pki/cert.rs`), its module path (`["pki", "cert"]`) and its
/// text.
pub struct Source {
    pub file: String,
    pub module: Vec<String>,
    pub text: String,
}

/// A path a file names, made absolute (`["pki", "ca", "Ca"]` for `super::ca::Ca` in
/// `src/pki/cert.rs`).
#[derive(Debug, Clone)]
pub struct Reference {
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub at: Loc,
}

/// Every `.rs` file under `src_dir` that is not test code, nor `main.rs` or `lib.rs`.
pub fn sources(crate_dir: &Path) -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "tests") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&crate_dir.join("src"), &mut paths);
    paths.sort();
    let all = paths
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(crate_dir).unwrap().to_string_lossy();
            let text = std::fs::read_to_string(&path).unwrap();
            source(&rel, text)
        })
        .collect();
    without_test_files(all)
}

/// `sources` without the files of test modules their parents declare (`#[cfg(test)] mod
/// script_tests;` in `src/package/mod.rs` is `src/package/script_tests.rs`), nor the files
/// below them.
pub fn without_test_files(sources: Vec<Source>) -> Vec<Source> {
    let mut tests: Vec<Vec<String>> = Vec::new();
    for s in &sources {
        let toks = tokens(&strip(&s.text));
        for i in 0..toks.len() {
            if let Some(m) = cfg_test_mod(&toks, i)
                && toks.get(m + 2).is_some_and(|(t, _)| t == ";")
            {
                let mut module = s.module.clone();
                module.push(toks[m + 1].0.clone());
                tests.push(module);
            }
        }
    }
    sources
        .into_iter()
        .filter(|s| !tests.iter().any(|t| s.module.starts_with(t)))
        .collect()
}

/// `text` as the file `rel` (`src/…`), or `None` for a file this test does not read.
pub fn source(rel: &str, text: String) -> Option<Source> {
    let inside = rel.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut module: Vec<String> = inside.split('/').map(str::to_string).collect();
    let last = module.last().map(String::as_str);
    if matches!(last, Some("tests")) || module.iter().any(|m| m == "tests") {
        return None;
    }
    if module.len() == 1 && matches!(last, Some("main" | "lib")) {
        return None;
    }
    if last == Some("mod") {
        module.pop();
    }
    Some(Source {
        file: rel.to_string(),
        module,
        text,
    })
}

/// Whether a literal's prefix letter after `before` starts a token: `r"…"` and `br"…"`, not
/// the end of an identifier such as `for"`.
pub fn starts_token(before: &[char]) -> bool {
    let ident = |c: &char| c.is_alphanumeric() || *c == '_';
    match before {
        [.., p, 'b'] => !ident(p),
        [.., p] => !ident(p),
        [] => true,
    }
}

/// `text` with comments, string and character literals blanked out (newlines kept, so lines
/// stay where they were).
pub fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r' && (next == Some('"') || next == Some('#')) && starts_token(&c[..i]) {
            // A raw string: r"…", r#"…"#, … (br"…" too: the b was copied as an identifier).
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            for _ in i..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), or a lifetime ('a), left alone.
            let end = if next == Some('\\') {
                (i + 3..c.len()).find(|&k| c[k] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The tokens of stripped text that matter here: identifiers (with `$crate`), `::`, braces,
/// commas, `*` and `;`, each with its line.
pub fn tokens(text: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' || (ch == '$' && c.get(i + 1) == Some(&'c')) {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((c[start..i].iter().collect(), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(("::".into(), line));
            i += 2;
        } else if ch.is_whitespace() {
            i += 1;
        } else {
            out.push((ch.to_string(), line));
            i += 1;
        }
    }
    out
}

fn tok(toks: &[(String, usize)], i: usize) -> Option<&str> {
    toks.get(i).map(|(s, _)| s.as_str())
}

/// Where `mod` is when `toks[i..]` starts `#[cfg(test)] mod`, with any visibility between
/// (`pub`, `pub(crate)`, `pub(in a::b)`).
pub fn cfg_test_mod(toks: &[(String, usize)], i: usize) -> Option<usize> {
    let t = |i| tok(toks, i);
    let attr = ["#", "[", "cfg", "(", "test", ")", "]"];
    if !(0..attr.len()).all(|k| t(i + k) == Some(attr[k])) {
        return None;
    }
    let mut j = i + attr.len();
    if t(j) == Some("pub") {
        j += 1;
        if t(j) == Some("(") {
            while t(j).is_some_and(|s| s != ")") {
                j += 1;
            }
            j += 1;
        }
    }
    (t(j) == Some("mod")).then_some(j)
}

/// Removes `#[cfg(test)] mod name { … }` from the tokens.
pub fn without_test_modules(toks: Vec<(String, usize)>) -> Vec<(String, usize)> {
    let t = tok;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some(j) = cfg_test_mod(&toks, i)
            && t(&toks, j + 2) == Some("{")
        {
            let mut depth = 0;
            let mut k = j + 2;
            while k < toks.len() {
                match t(&toks, k) {
                    Some("{") => depth += 1,
                    Some("}") => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            i = k + 1;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

/// Every crate-internal path `source` names, made absolute. Inline modules (`mod out { … }`)
/// count for `super` and `self` inside them.
pub fn references(source: &Source) -> Vec<Reference> {
    let toks = without_test_modules(tokens(&strip(&source.text)));
    let t = |i: usize| toks.get(i).map(|(s, _)| s.as_str());
    let mut refs = Vec::new();
    let mut module = source.module.clone();
    // Brace depths at which an inline module was opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match t(i) {
            Some("{") => depth += 1,
            Some("}") => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                    module.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Some("mod") if t(i + 2) == Some("{") => {
                module.push(t(i + 1).unwrap().to_string());
                inline.push(depth + 1);
            }
            Some(first @ ("crate" | "$crate" | "super" | "self"))
                if t(i + 1) == Some("::") && (i == 0 || t(i - 1) != Some("::")) =>
            {
                let base: Option<Vec<String>> = match first {
                    "crate" | "$crate" => Some(Vec::new()),
                    "self" => Some(module.clone()),
                    _ => module.split_last().map(|(_, parent)| parent.to_vec()),
                };
                let mut paths = Vec::new();
                let end = path_tree(&toks, i + 2, base.unwrap_or_default(), &mut paths);
                let from = source.module.clone();
                for (to, line) in paths {
                    refs.push(Reference {
                        from: from.clone(),
                        to,
                        at: Loc {
                            file: source.file.clone(),
                            line,
                        },
                    });
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    refs
}

/// Reads a path (tree) starting at `toks[i]` below `prefix`; pushes each leaf path with the
/// line of its last segment. Returns the index after it.
pub fn path_tree(
    toks: &[(String, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    let t = |i: usize| toks.get(i).map(|(s, _)| s.as_str());
    let is_ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
    };
    let mut line = toks.get(i).map_or(0, |(_, l)| *l);
    loop {
        match t(i) {
            Some("{") => {
                i += 1;
                loop {
                    match t(i) {
                        Some("}") => return i + 1,
                        Some(",") => i += 1,
                        None => return i,
                        Some(_) => {
                            let next = path_tree(toks, i, prefix.clone(), out);
                            // Whatever it was, never read the same token twice.
                            i = next.max(i + 1);
                        }
                    }
                }
            }
            Some("*") => {
                out.push((prefix, line));
                return i + 1;
            }
            Some("super") => {
                prefix.pop();
                line = toks[i].1;
                i += 1;
            }
            Some("self") => {
                // `a::{self, …}`: a itself.
                line = toks[i].1;
                i += 1;
            }
            Some(s) if is_ident(s) && s != "as" => {
                prefix.push(s.to_string());
                line = toks[i].1;
                i += 1;
                if t(i) == Some("as") {
                    // `G as H`: the path is G's; skip the new name.
                    out.push((prefix, line));
                    return i + 2;
                }
            }
            _ => {
                out.push((prefix, line));
                return i;
            }
        }
        if t(i) == Some("::") {
            i += 1;
        } else {
            out.push((prefix, line));
            return i;
        }
    }
}
