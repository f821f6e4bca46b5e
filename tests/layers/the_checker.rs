//! The checker itself, on made-up files and docs: nested use trees, `super` and `self`
//! resolved; comments, strings and test modules not read; a reference within a layer or to one
//! above reported with where it is made, and so is a module in no layer; a cycle among the files
//! of a module directory reported with every edge and where it is made; sibling files free to use
//! their parent; the layers read from `src/lib.rs`'s pipeline and the README's table.

use crate::docs::{lib_layers, readme_layers};
use crate::graph::{Layers, problems};
use crate::reader::{Source, references, source, without_test_files};

fn fake(files: &[(&str, &str)]) -> Vec<Source> {
    let sources = files
        .iter()
        .filter_map(|(path, text)| source(path, text.to_string()))
        .collect();
    without_test_files(sources)
}

/// Where the made-up files below are allowed to point: `a` at the bottom, `b`, then `c` and `d`.
const LAYERS: Layers = &[("bottom", &["a"]), ("middle", &["b"]), ("top", &["c", "d"])];

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
#[cfg(test)]
pub(crate) mod support {
    use crate::verify;
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
        ("src/a.rs", "#[cfg(test)]\nmod a_tests;\n"),
        ("src/a/tests.rs", "use crate::b;"),
        ("src/a/a_tests.rs", "use crate::b;"),
        ("src/b/tests/mod.rs", "use crate::a;"),
        (
            "src/b/mod.rs",
            "#[cfg(test)]\npub(crate) mod fixtures;\nmod real;",
        ),
        ("src/b/fixtures/mod.rs", "use crate::a;"),
        ("src/b/fixtures/more.rs", "use crate::a;"),
        ("src/b/real.rs", ""),
    ]);
    let files: Vec<&str> = files.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(files, ["src/a.rs", "src/b/mod.rs", "src/b/real.rs"]);
}

#[test]
fn a_reference_within_a_layer_or_to_one_above_is_reported_with_where_it_is_made() {
    let files = fake(&[
        ("src/a.rs", "\nuse crate::b::X;\n"),
        ("src/b/mod.rs", "mod inner;\nuse crate::a;\n"),
        ("src/b/inner.rs", "\n\nfn f() { crate::d::g() }\n"),
        ("src/c.rs", "use crate::{\n    a,\n    b,\n};\n"),
        (
            "src/d.rs",
            "use crate::{a, c::Y};\nfn g() { crate::c::h() }\n",
        ),
    ]);
    assert_eq!(
        problems(&files, LAYERS),
        [
            "a, in layer 0 (bottom), uses b, in layer 1 (middle) above it: src/a.rs:2\n",
            "b, in layer 1 (middle), uses d, in layer 2 (top) above it: src/b/inner.rs:3\n",
            "d uses c, of its own layer 2 (top): src/d.rs:1, src/d.rs:2\n",
        ]
    );
}

#[test]
fn a_module_in_no_layer_is_reported_and_so_is_one_that_is_gone() {
    let files = fake(&[
        ("src/a.rs", ""),
        ("src/b.rs", "use crate::a;\n"),
        ("src/c.rs", "use crate::new;\n"),
        ("src/new/mod.rs", "use crate::a;\n"),
    ]);
    assert_eq!(
        problems(&files, LAYERS),
        [
            "the table of layers lists d, which is no module of src/: remove it from the table \
             in tests/layers.rs, from the pipeline in src/lib.rs and from the README\n",
            "new is a module of src/ in no layer: add it to the table in tests/layers.rs, to the \
             pipeline in src/lib.rs and to the README's layer table\n",
        ]
    );
    let twice: Layers = &[
        ("bottom", &["a"]),
        ("middle", &["b", "new"]),
        ("top", &["c", "a"]),
    ];
    assert_eq!(
        problems(&files, twice),
        ["the table of layers lists a twice\n"]
    );
}

#[test]
fn the_bottom_layer_uses_no_other_module() {
    let files = fake(&[
        ("src/model/mod.rs", "mod arch;\n"),
        ("src/model/arch.rs", "\nuse crate::config::Cluster;\n"),
        ("src/config.rs", "use crate::model::Arch;\n"),
    ]);
    let layers: Layers = &[("vocabulary", &["model"]), ("load", &["config"])];
    assert_eq!(
        problems(&files, layers),
        [
            "model, in layer 0 (vocabulary), uses config, in layer 1 (load) above it: \
          src/model/arch.rs:2\n"
        ]
    );
}

#[test]
fn a_cycle_among_the_files_of_a_module_directory_is_reported_with_every_edge() {
    let files = fake(&[
        ("src/p/mod.rs", "mod a; mod b; mod c; mod d;\n"),
        ("src/p/a.rs", "use crate::p::b::X;\n"),
        ("src/p/b/mod.rs", "mod inner;\n"),
        ("src/p/b/inner.rs", "\n\nfn f() { crate::p::c::g() }\n"),
        ("src/p/c.rs", "use super::{\n    a,\n};\n"),
        ("src/p/d.rs", "use super::a;\n"),
    ]);
    let problems = problems(&files, &[("all", &["p"])]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0],
        "a cycle among the files of src/p/: a -> b -> c -> a\n  \
         a -> b: src/p/a.rs:1\n  b -> c: src/p/b/inner.rs:3\n  c -> a: src/p/c.rs:2\n"
    );
}

#[test]
fn sibling_files_may_not_form_a_cycle_but_may_use_their_parent() {
    let layers: Layers = &[("all", &["p"])];
    let files = fake(&[
        ("src/p/mod.rs", "mod x; mod y; pub use x::X; use y::Y;\n"),
        ("src/p/x.rs", "use super::y::Y;\nuse super::SHARED;\n"),
        ("src/p/y.rs", "use super::X;\n"),
    ]);
    assert!(
        problems(&files, layers).is_empty(),
        "{:?}",
        problems(&files, layers)
    );

    let files = fake(&[
        ("src/p/mod.rs", "mod x; mod y;\n"),
        ("src/p/x.rs", "use super::y::Y;\n"),
        ("src/p/y.rs", "use crate::p::x::X;\n"),
    ]);
    assert_eq!(
        problems(&files, layers),
        ["a cycle among the files of src/p/: x -> y -> x\n  \
          x -> y: src/p/x.rs:1\n  y -> x: src/p/y.rs:1\n"]
    );
}

#[test]
fn the_layers_are_read_from_the_pipeline_in_lib_rs_and_the_readme_table() {
    let lib = "//! The pipeline, bottom first:\n\
               //!\n\
               //! 0. **vocabulary** ([`model`], [`fsutil`]) — what every stage names: [`model::Arch`]\n\
               //!    (not a layer: 1. **x** ([`y`]) in the middle of a line).\n\
               //! 1. **load** ([`config`]) — `cluster.yaml`, validated (by [`config::validate`]).\n\
               //! 10. **commands** ([`app`])\n\
               //!\n\
               //! 2. a list that names no layer ([`pki`]).\n\
               pub mod app;\n";
    assert_eq!(
        lib_layers(lib),
        [
            "0. vocabulary: model, fsutil",
            "1. load: config",
            "10. commands: app"
        ]
    );
    let readme = "The layers:\n\n\
                  | layer | modules | what |\n\
                  |---|---|---|\n\
                  | vocabulary | `model`, `fsutil` | architectures, formats (`Format`) |\n\
                  | load | `config` | `cluster.yaml` |\n\
                  \n\
                  | other | `table` | after it |\n";
    assert_eq!(
        readme_layers(readme),
        ["vocabulary: model, fsutil", "load: config"]
    );
}
