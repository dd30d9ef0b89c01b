//! Imports run one way: every `crate::` path in `src/` (and `idpbuilder_push::` in `main.rs`)
//! names a module in the same layer or one below, and no set of modules imports itself in a
//! circle. Test code (`*_tests.rs`, `#[cfg(test)] mod tests`) may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may import from its own layer and the layers below it. `cli` holds
/// the flags as parsed values (clap's derive types, like ripgrep's low-level arguments) that the
/// session reads, so it sits low; `main` is the edge that wires them together.
const LAYERS: &[&[&str]] = &[
    &["error", "text"],
    &["digest"],
    &["oci", "reference"],
    &["cli", "credentials", "progress"],
    &["registry"],
    &["cluster", "source", "destination"],
    &["push", "pull"],
    &["session"],
    &["report", "completion", "terminal", "passthrough", "main"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file without its test module and its comments.
fn code_of(text: &str) -> String {
    let end = ["#[cfg(test)]\nmod tests", "#[cfg(test)]\n#[path"]
        .iter()
        .filter_map(|marker| text.find(marker))
        .min()
        .unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `prefix` path's first segment in `code`, with `use prefix::{a, b}` groups opened.
fn named_modules(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inside = group.split('}').next().unwrap_or_default();
            for item in inside.split(',') {
                let first = item.trim().split("::").next().unwrap_or_default();
                names.insert(first.trim().to_string());
            }
        } else {
            let first: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(first);
        }
    }
    names.retain(|name| !name.is_empty() && name.chars().all(|c| c.is_lowercase() || c == '_'));
    names
}

/// Module -> the modules it imports, from the files under `src/`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file);
        let name = relative.to_string_lossy();
        if name.ends_with("_tests.rs") || name.ends_with("testing.rs") || name == "lib.rs" {
            continue;
        }
        let module = name
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        let code = code_of(&std::fs::read_to_string(&file).unwrap_or_default());
        let mut imports = named_modules(&code, "crate::");
        imports.extend(named_modules(&code, "idpbuilder_push::"));
        imports.remove(&module);
        graph.entry(module).or_default().extend(imports);
    }
    graph
}

/// A module that reaches itself through its imports, with the path, if any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn imports_run_downwards_and_never_in_a_circle() {
    let graph = module_graph();
    for (module, imports) in &graph {
        eprintln!(
            "{module} -> {}",
            imports.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(graph.contains_key("oci") && graph.contains_key("session"));
    let mut upward = Vec::new();
    for (module, imports) in &graph {
        let Some(own) = layer_of(module) else {
            upward.push(format!("{module} has no layer in LAYERS"));
            continue;
        };
        for import in imports {
            match layer_of(import) {
                Some(layer) if layer <= own => {}
                Some(_) => upward.push(format!("{module} imports {import}, a layer above it")),
                None => upward.push(format!("{module} imports {import}, which has no layer")),
            }
        }
    }
    assert!(upward.is_empty(), "{}", upward.join("\n"));
    assert_eq!(find_cycle(&graph), None, "a circle of imports");
}

#[test]
fn the_check_reads_groups_and_paths() {
    let code = code_of(
        "use crate::{oci::Manifest, digest};\n// crate::push\nlet x = crate::text::escape(y);\n\
         #[cfg(test)]\nmod tests { use crate::session; }",
    );
    let names: Vec<String> = named_modules(&code, "crate::").into_iter().collect();
    assert_eq!(names, ["digest", "oci", "text"]);
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(find_cycle(&graph).is_some());
}
