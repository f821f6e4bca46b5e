//! The layers as the docs list them, each as `name: module, module` to hold against the table:
//! the numbered pipeline at the top of `src/lib.rs` and the README's layer table.

/// What stands between backticks in `text`, in order.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The items of `src/lib.rs`'s `//!` docs whose first line opens `N. **name** ([`module`], …)`,
/// as `N. name: module, module`.
pub fn lib_layers(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .filter_map(|line| {
            let (n, rest) = line.trim().split_once(". **")?;
            let n: usize = n.parse().ok()?;
            let (name, rest) = rest.split_once("** (")?;
            let (modules, _) = rest.split_once(')')?;
            Some(format!("{n}. {name}: {}", quoted(modules).join(", ")))
        })
        .collect()
}

/// The rows of the README's table headed `| layer | modules | what |`, as `name: module, module`.
pub fn readme_layers(readme: &str) -> Vec<String> {
    readme
        .lines()
        .skip_while(|line| line.trim() != "| layer | modules | what |")
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').collect();
            let modules = cells.get(2).copied().unwrap_or_default();
            format!("{}: {}", cells[1].trim(), quoted(modules).join(", "))
        })
        .collect()
}
