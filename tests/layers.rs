//! The crate's layering, read from its sources: no import cycle among the top-level modules of
//! `src/` (each `src/<m>.rs` or `src/<m>/` is one module; `main.rs` and `lib.rs` are not), no
//! cycle among the sibling files of any module directory (a reference to the parent's `mod.rs`
//! is no edge), and `model`, the shared vocabulary at the bottom, uses no other module of the
//! crate. A failure prints each cycle with the file and line of every reference that makes it.
//!
//! The reader is small and sees only what a path says: `crate::a::b`, `use crate::{a, b::{c,
//! d}}` (nested braces), `super::x` and `self::x`, wherever they appear outside comments and
//! string literals. It skips test code: files named `tests.rs`, anything under a `tests/`
//! directory, and `#[cfg(test)] mod … { … }` blocks. Its own tests (`the_checker`) feed it
//! made-up files.

#[path = "layers/graph.rs"]
mod graph;
#[path = "layers/reader.rs"]
mod reader;
#[path = "layers/the_checker.rs"]
mod the_checker;

use std::path::Path;

use graph::{graphs, problems};
use reader::{Source, sources};

fn crate_sources() -> Vec<Source> {
    sources(Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn no_import_cycles_and_model_at_the_bottom() {
    let sources = crate_sources();
    let problems = problems(&sources);
    assert!(problems.is_empty(), "\n{}", problems.concat());
}

/// The reader sees the references that are there, so the test above has something to check:
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
