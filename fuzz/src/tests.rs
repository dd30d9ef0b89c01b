//! Replays the seed corpus and every input that once crashed a target through the harnesses,
//! on stable Rust, and keeps the seed files in step with [`crate::seeds`].

use std::path::{Path, PathBuf};

use crate::seeds;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn harness(target: &str) -> fn(&[u8]) {
    match target {
        "destination" => crate::destination,
        "challenge" => crate::challenge,
        "layout" => crate::layout,
        "archive" => crate::archive,
        other => panic!("no target {other}"),
    }
}

const TARGETS: [&str; 4] = ["destination", "challenge", "layout", "archive"];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn seed_files_match_the_seeds_module() {
    let update = std::env::var_os("UPDATE_SEEDS").is_some();
    let seeds = seeds::all();
    for target in TARGETS {
        let dir = root().join("seeds").join(target);
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
        }
        let mut expected = Vec::new();
        for seed in seeds.iter().filter(|s| s.target == target) {
            let path = dir.join(&seed.name);
            if update {
                std::fs::write(&path, &seed.bytes).unwrap();
            }
            let on_disk = std::fs::read(&path).unwrap_or_default();
            assert!(
                on_disk == seed.bytes,
                "{} is out of date: run UPDATE_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml",
                path.display()
            );
            expected.push(path);
        }
        expected.sort();
        assert_eq!(files(&dir), expected, "seed files of {target}");
    }
}

#[test]
fn seeds_and_past_crashes_replay_without_panicking() {
    for target in TARGETS {
        let run = harness(target);
        for dir in ["seeds", "regressions"] {
            for path in files(&root().join(dir).join(target)) {
                let bytes = std::fs::read(&path).unwrap();
                eprintln!("replaying {}", path.display());
                run(&bytes);
            }
        }
    }
}

#[test]
fn layout_seeds_open_as_images() {
    // The seeds are worth mutating only if they reach the end of the walk.
    for seed in seeds::all().iter().filter(|s| s.target == "layout") {
        let dir = crate::scratch().join(format!("seed-{}", seed.name));
        let (argument, platform) = crate::layout_input::write(&dir, &seed.bytes).unwrap();
        let result = idpbuilder_push::source::open(&argument, platform);
        assert_eq!(
            result.is_ok(),
            seed.name != "schema1",
            "{}: {:?}",
            seed.name,
            result.err()
        );
    }
}

#[test]
fn archive_seeds_open_as_images() {
    for seed in seeds::all().iter().filter(|s| s.target == "archive") {
        let path = crate::scratch().join(&seed.name);
        std::fs::write(&path, &seed.bytes).unwrap();
        let result = idpbuilder_push::source::open(&path.display().to_string(), None);
        let expect_ok = !seed.name.starts_with("schema1")
            && !seed.name.starts_with("two-images")
            && !seed.name.starts_with("docker-classic");
        assert_eq!(
            result.is_ok(),
            expect_ok,
            "{}: {:?}",
            seed.name,
            result.err()
        );
    }
}

#[test]
fn tokens_name_later_parts_only() {
    let parts =
        crate::layout_input::finish(crate::layout_input::split(b"<1> <#1> <0> <9>\n--\nabc"));
    let text = String::from_utf8(parts[0].clone()).unwrap();
    assert_eq!(
        text,
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 3 <0> <9>"
    );
}
