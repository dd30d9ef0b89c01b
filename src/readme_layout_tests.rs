//! README's "Layout" list stays true: every file under `src/` has a line of its own there, and
//! every `src/` path the list names exists.

use std::collections::BTreeSet;
use std::path::Path;

const LIST_STARTS: &str = "Layout (data flows top to bottom";

/// The `src/...` paths at the start of the lines of README's Layout list: the indented block
/// after the line that opens it.
fn named_in_layout(readme: &str) -> BTreeSet<String> {
    let lines = readme
        .lines()
        .skip_while(|line| !line.starts_with(LIST_STARTS));
    let block = lines
        .skip_while(|line| !line.starts_with("    "))
        .take_while(|line| line.is_empty() || line.starts_with("    "));
    block
        .filter_map(|line| line.split_whitespace().next())
        .filter(|first| first.starts_with("src/"))
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`, as a path from the crate's root (`src/...`).
fn files_under(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(root, &path, found);
        } else if let Ok(relative) = path.strip_prefix(root) {
            found.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn readme_layout_names_every_file_under_src_and_nothing_else() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let named = named_in_layout(&readme);
    assert!(
        !named.is_empty(),
        "README.md has no Layout list (a line starting {LIST_STARTS:?}, then indented lines)"
    );
    let mut files = BTreeSet::new();
    files_under(root, &root.join("src"), &mut files);
    let missing: Vec<&String> = files.difference(&named).collect();
    let gone: Vec<&String> = named.difference(&files).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "README.md's Layout list is out of date:\n  not named there (add a line each): {missing:?}\n  \
         named there but not in src/ (remove or rename): {gone:?}"
    );
}

#[test]
fn the_layout_list_is_the_indented_block_after_its_opening_line() {
    let readme = "intro\n    src/elsewhere.rs  not this one\n\
                  Layout (data flows top to bottom):\n\n    src/a.rs     one\n\
                  \x20                more about a\n    src/b/c.rs   two\n    tests/e2e/   not src\n\
                  \n    src/d.rs     after a blank line\nA paragraph.\n    src/e.rs  not listed\n";
    let named: Vec<String> = named_in_layout(readme).into_iter().collect();
    assert_eq!(named, ["src/a.rs", "src/b/c.rs", "src/d.rs"]);
}
