//! The checker itself, on made-up files: nested use trees, `super` and `self` resolved; comments,
//! strings and test modules not read; a cycle reported with every edge and where it is made;
//! sibling files free to use their parent; `model` alone at the bottom.

use crate::graph::problems;
use crate::reader::{Source, references, source};

fn fake(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .filter_map(|(path, text)| source(path, text.to_string()))
        .collect()
}

fn targets(file: &str, text: &str) -> Vec<String> {
    let s = source(file, text.to_string()).unwrap();
    references(&s).iter().map(|r| r.to.join("::")).collect()
}

#[test]
fn nested_use_trees_super_and_self_are_resolved() {
    let text = "use crate::{a, b::{c, d::E}, f::{self, G as H}};\n\
                use super::ca::Ca;\n\
                use super::{x509::{self, Policy}, CERT_MODE};\n\
                fn f() { self::inner::g(); crate::fsutil::sha256_hex(b); }\n";
    assert_eq!(
        targets("src/pki/cert.rs", text),
        [
            "a",
            "b::c",
            "b::d::E",
            "f",
            "f::G",
            "pki::ca::Ca",
            "pki::x509",
            "pki::x509::Policy",
            "pki::CERT_MODE",
            "pki::cert::inner::g",
            "fsutil::sha256_hex",
        ]
    );
    // In a mod.rs, super is the crate.
    assert_eq!(targets("src/pki/mod.rs", "use super::config;"), ["config"]);
}

#[test]
fn comments_strings_and_test_modules_are_not_read() {
    let text = r####"
//! Uses [`crate::app`] in a doc comment.
/* crate::verify in a block /* nested crate::stage */ comment */
const S: &str = "crate::output";
const R: &str = r#"crate::"plan""#;
const C: char = '"';
fn lifetime<'a>(x: &'a str) -> &'a str { x }
#[cfg(test)]
mod tests {
    use crate::cli;
}
use crate::fetch; // crate::report
"####;
    assert_eq!(targets("src/x.rs", text), ["fetch"]);
}

#[test]
fn test_files_main_and_lib_are_not_read() {
    let files = fake(&[
        ("src/lib.rs", "pub mod a;"),
        ("src/main.rs", "use crate::a;"),
        ("src/a.rs", ""),
        ("src/a/tests.rs", "use crate::b;"),
        ("src/b/tests/mod.rs", "use crate::a;"),
        ("src/b/mod.rs", ""),
    ]);
    let files: Vec<&str> = files.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(files, ["src/a.rs", "src/b/mod.rs"]);
}

#[test]
fn a_cycle_is_reported_with_every_edge_and_where_it_is_made() {
    let files = fake(&[
        ("src/a.rs", "use crate::b::X;\n"),
        ("src/b/mod.rs", "mod inner;\n"),
        ("src/b/inner.rs", "\n\nfn f() { crate::c::g() }\n"),
        ("src/c.rs", "use crate::{\n    a,\n};\n"),
        ("src/d.rs", "use crate::a;\n"),
    ]);
    let problems = problems(&files);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0],
        "a cycle among the top-level modules of src/: a -> b -> c -> a\n  \
         a -> b: src/a.rs:1\n  b -> c: src/b/inner.rs:3\n  c -> a: src/c.rs:2\n"
    );
}

#[test]
fn sibling_files_may_not_form_a_cycle_but_may_use_their_parent() {
    let files = fake(&[
        ("src/p/mod.rs", "mod x; mod y; pub use x::X; use y::Y;\n"),
        ("src/p/x.rs", "use super::y::Y;\nuse super::SHARED;\n"),
        ("src/p/y.rs", "use super::X;\n"),
    ]);
    assert!(problems(&files).is_empty(), "{:?}", problems(&files));

    let files = fake(&[
        ("src/p/mod.rs", "mod x; mod y;\n"),
        ("src/p/x.rs", "use super::y::Y;\n"),
        ("src/p/y.rs", "use crate::p::x::X;\n"),
    ]);
    assert_eq!(
        problems(&files),
        ["a cycle among the files of src/p/: x -> y -> x\n  \
          x -> y: src/p/x.rs:1\n  y -> x: src/p/y.rs:1\n"]
    );
}

#[test]
fn model_may_use_no_other_module() {
    let files = fake(&[
        ("src/model/mod.rs", "mod arch;\n"),
        ("src/model/arch.rs", "\nuse crate::config::Cluster;\n"),
        ("src/config.rs", "use crate::model::Arch;\n"),
    ]);
    let problems = problems(&files);
    assert!(
        problems.contains(&"model, the bottom layer, uses config: src/model/arch.rs:2\n".into()),
        "{problems:?}"
    );
}
