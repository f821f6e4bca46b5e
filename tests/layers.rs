//! The crate's layering, read from its sources. The top-level modules of `src/` (each
//! `src/<m>.rs` or `src/<m>/` is one module; `main.rs` and `lib.rs` are not) form the layers of
//! [`LAYERS`], bottom first, and a module uses only modules of the layers below its own: none of
//! its own layer, none above (so the bottom layer uses no other module of the crate, and there is
//! no import cycle). Every module is in one layer. The numbered pipeline at the top of
//! `src/lib.rs` and the README's layer table list the same layers, in the same order, with the
//! same modules. Among the sibling files of any module directory there is no cycle (a reference
//! to the parent's `mod.rs` is no edge). A failure prints each forbidden reference, or each
//! cycle, with the file and line of every reference that makes it.
//!
//! The reader is small and sees only what a path says: `crate::a::b`, `use crate::{a, b::{c,
//! d}}` (nested braces), `super::x` and `self::x`, wherever they appear outside comments and
//! string literals. It skips test code: files named `tests.rs`, anything under a `tests/`
//! directory, `#[cfg(test)] mod … { … }` blocks and the files of `#[cfg(test)] mod …;`. Its own
//! tests (`the_checker`) feed it made-up files.

#[path = "layers/docs.rs"]
mod docs;
#[path = "layers/graph.rs"]
mod graph;
#[path = "layers/reader.rs"]
mod reader;
#[path = "layers/the_checker.rs"]
mod the_checker;

use std::path::Path;

use docs::{lib_layers, readme_layers};
use graph::{Layers, graphs, problems};
use reader::{Source, sources};

/// The layers of `src/`, bottom first, each a name and its modules. A module may use the modules
/// of the layers above its line here, and no other: no edge within a layer is allowed. A new
/// module is its name on its layer's line (or a new line for a new layer), and the same in the
/// pipeline at the top of `src/lib.rs` and in the README's layer table.
const LAYERS: Layers = &[
    (
        "vocabulary",
        &["model", "fsutil", "report", "envfile", "clock"],
    ),
    ("digests", &["digests"]),
    ("release", &["release"]),
    ("load", &["config"]),
    ("fetch", &["fetch", "extract"]),
    ("pki", &["pki"]),
    ("render", &["render"]),
    ("stage", &["stage"]),
    ("package", &["package"]),
    ("record", &["output"]),
    ("claim", &["outdir"]),
    ("membership", &["membership"]),
    ("plan", &["plan"]),
    ("execute", &["execute"]),
    ("finished run", &["publish", "verify", "status"]),
    ("command line", &["cli"]),
    ("commands", &["app"]),
];

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn crate_sources() -> Vec<Source> {
    sources(crate_dir())
}

#[test]
fn every_module_uses_only_the_layers_below_its_own() {
    let sources = crate_sources();
    let problems = problems(&sources, LAYERS);
    assert!(problems.is_empty(), "\n{}", problems.concat());
}

/// `src/lib.rs` numbers the layers as [`LAYERS`] lists them, and the README lists them the same.
#[test]
fn lib_rs_and_the_readme_list_the_layers_of_the_table() {
    let read = |file: &str| std::fs::read_to_string(crate_dir().join(file)).unwrap();
    let table: Vec<String> = LAYERS
        .iter()
        .map(|(name, modules)| format!("{name}: {}", modules.join(", ")))
        .collect();
    let numbered: Vec<String> = (table.iter().enumerate())
        .map(|(n, layer)| format!("{n}. {layer}"))
        .collect();
    assert_eq!(
        lib_layers(&read("src/lib.rs")),
        numbered,
        "the pipeline at the top of src/lib.rs (left) and LAYERS in tests/layers.rs (right) differ"
    );
    assert_eq!(
        readme_layers(&read("README.md")),
        table,
        "the README's layer table (left) and LAYERS in tests/layers.rs (right) differ"
    );
}

/// The reader sees the references that are there, so the layers have something to check:
/// `app`, which wires the stages to the commands, uses most modules, and the files of some
/// module directory use each other.
#[test]
fn the_reader_sees_the_crates_references() {
    let sources = crate_sources();
    assert!(sources.iter().any(|s| s.module == ["model"]));
    assert!(sources.iter().all(|s| !s.file.ends_with("/tests.rs")));
    let graphs = graphs(&sources);
    let top = &graphs[&Vec::new()];
    let used_by_app = top["app"].len();
    assert!(
        used_by_app * 2 > top.len(),
        "app uses only {:?} of {:?}",
        top["app"].keys().collect::<Vec<_>>(),
        top.keys().collect::<Vec<_>>()
    );
    let siblings = graphs
        .iter()
        .filter(|(parent, _)| !parent.is_empty())
        .flat_map(|(_, graph)| graph.values())
        .any(|edges| !edges.is_empty());
    assert!(
        siblings,
        "no file of a module directory uses a sibling: {graphs:?}"
    );
}
