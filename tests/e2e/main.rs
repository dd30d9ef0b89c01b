//! The end-to-end tests: one test binary, one module per topic (ripgrep's `tests/integration/`
//! is the model), so that `tests/support` is compiled and the crate linked once, not once per
//! topic. `cargo test --test e2e` runs them all; `cargo test --test e2e cli::` one topic.
//!
//! A new topic is a new file `tests/e2e/TOPIC.rs` (or `tests/e2e/TOPIC/mod.rs` when it has
//! parts of its own) declared below with `mod TOPIC;`. It says `use crate::support;` where a
//! test binary of its own would say `mod support;`, and reaches the helpers as `support::...`.
//! A file dropped at the top of `tests/` still builds, as a test binary of its own that
//! compiles `tests/support` again: fold it in here instead.

#[path = "../support/mod.rs"]
mod support;

mod bad_inputs;
mod cli;
mod cluster;
mod completion;
mod concurrency;
mod docker_config;
mod engine;
mod faults;
mod forms;
mod found_images;
mod gitea;
mod harness;
mod image_shapes;
mod library;
mod mirror;
mod passthrough;
mod peak_rss;
mod progress;
mod pull;
mod push;
mod registries;
mod security;
mod small_blobs;
mod unreachable;
