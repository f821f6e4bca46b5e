//! The graphs among sibling modules, the layers of the top-level ones, the cycles among the files
//! of a module directory, and the problems described with the file and line of every reference
//! that makes one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::reader::{Loc, Source, references};

/// Edges among the children of one module (`[]` for the crate root), each with where it is
/// made.
pub type Graph = BTreeMap<String, BTreeMap<String, Vec<Loc>>>;

/// For each module that has child modules of its own files, the graph among those children:
/// `a -> b` when a file of child `a` names something in child `b`. Names of the parent's own
/// items, and the parent's own files, make no edge.
pub fn graphs(sources: &[Source]) -> BTreeMap<Vec<String>, Graph> {
    // Which modules have which children, from the files.
    let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for s in sources {
        for n in 0..s.module.len() {
            children
                .entry(s.module[..n].to_vec())
                .or_default()
                .insert(s.module[n].clone());
        }
    }
    let mut out: BTreeMap<Vec<String>, Graph> = BTreeMap::new();
    for (parent, kids) in &children {
        let graph = out.entry(parent.clone()).or_default();
        for k in kids {
            graph.entry(k.clone()).or_default();
        }
    }
    for s in sources {
        for r in references(s) {
            for (parent, kids) in &children {
                let n = parent.len();
                let (Some(from), Some(to)) = (r.from.get(n), r.to.get(n)) else {
                    continue;
                };
                if !r.from.starts_with(parent) || !r.to.starts_with(parent) {
                    continue;
                }
                if from == to || !kids.contains(to) {
                    continue;
                }
                out.get_mut(parent)
                    .unwrap()
                    .get_mut(from)
                    .unwrap()
                    .entry(to.clone())
                    .or_default()
                    .push(r.at.clone());
            }
        }
    }
    out
}

/// One cycle of each strongly connected part of `graph` that has more than one node, as the
/// list of its nodes (the first not repeated at the end).
pub fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's algorithm, then a path back to the start inside each part.
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        parts: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph[v].keys() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut part = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                part.push(w);
                if w == v {
                    break;
                }
            }
            s.parts.push(part);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        parts: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    let mut out = Vec::new();
    for part in s.parts.into_iter().filter(|p| p.len() > 1) {
        let inside: BTreeSet<&str> = part.iter().copied().collect();
        let start = *inside.iter().next().unwrap();
        // Breadth-first from start's successors back to start, within the part.
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(v) = queue.pop_front() {
            for w in graph[v].keys().map(String::as_str) {
                if !inside.contains(w) || prev.contains_key(w) {
                    continue;
                }
                prev.insert(w, v);
                if w == start {
                    break 'search;
                }
                queue.push_back(w);
            }
        }
        let mut cycle = vec![start.to_string()];
        let mut v = prev[start];
        while v != start {
            cycle.push(v.to_string());
            v = prev[v];
        }
        cycle.reverse();
        cycle.rotate_right(1);
        out.push(cycle);
    }
    out
}

/// `file:line, file:line, …`, each place once.
pub fn places(locs: &[Loc]) -> String {
    let unique: BTreeSet<&Loc> = locs.iter().collect();
    let unique: Vec<String> = unique.into_iter().map(Loc::to_string).collect();
    unique.join(", ")
}

/// Each cycle among the files of the module directory `parent`, with the file and line of every
/// reference along it.
pub fn describe(parent: &[String], graph: &Graph, cycle: &[String]) -> String {
    let mut text = format!(
        "a cycle among the files of src/{}/: {} -> {}\n",
        parent.join("/"),
        cycle.join(" -> "),
        cycle[0]
    );
    for (n, from) in cycle.iter().enumerate() {
        let to = &cycle[(n + 1) % cycle.len()];
        writeln!(text, "  {from} -> {to}: {}", places(&graph[from][to])).unwrap();
    }
    text
}

/// The layers of the top-level modules, bottom first: each a name and its modules.
pub type Layers<'a> = &'a [(&'a str, &'a [&'a str])];

/// What is wrong with the top-level `graph` against `layers`: a module in no layer or in two, a
/// layer's module that is no module at all, and every reference to a module of the same layer or
/// of one above, with the file and line of each.
pub fn layer_problems(graph: &Graph, layers: Layers) -> Vec<String> {
    let mut out = Vec::new();
    let mut rank: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, (_, modules)) in layers.iter().enumerate() {
        for m in *modules {
            if rank.contains_key(m) {
                out.push(format!("the table of layers lists {m} twice\n"));
            }
            rank.entry(m).or_insert(n);
        }
    }
    for m in rank.keys().filter(|m| !graph.contains_key(**m)) {
        out.push(format!(
            "the table of layers lists {m}, which is no module of src/: remove it from the \
             table in tests/layers.rs, from the pipeline in src/lib.rs and from the README\n"
        ));
    }
    let layer = |n: usize| format!("layer {n} ({})", layers[n].0);
    for (from, edges) in graph {
        let Some(&a) = rank.get(from.as_str()) else {
            out.push(format!(
                "{from} is a module of src/ in no layer: add it to the table in \
                 tests/layers.rs, to the pipeline in src/lib.rs and to the README's layer table\n"
            ));
            continue;
        };
        for (to, locs) in edges {
            // A module in no layer is reported as such, above.
            let Some(&b) = rank.get(to.as_str()) else {
                continue;
            };
            if b == a {
                out.push(format!(
                    "{from} uses {to}, of its own {}: {}\n",
                    layer(a),
                    places(locs)
                ));
            } else if b > a {
                out.push(format!(
                    "{from}, in {}, uses {to}, in {} above it: {}\n",
                    layer(a),
                    layer(b),
                    places(locs)
                ));
            }
        }
    }
    out
}

/// Every problem of the layering of `sources`, described; empty when there is none: the
/// top-level modules against `layers`, and a cycle among the files of any module directory.
pub fn problems(sources: &[Source], layers: Layers) -> Vec<String> {
    let mut out = Vec::new();
    for (parent, graph) in &graphs(sources) {
        if parent.is_empty() {
            out.extend(layer_problems(graph, layers));
        } else {
            for cycle in cycles(graph) {
                out.push(describe(parent, graph, &cycle));
            }
        }
    }
    out
}
