//! The tests that read a child's peak RSS (`ru_maxrss` from `wait4`), in a test binary of their
//! own, apart from `tests/e2e`: Linux starts a child's `ru_maxrss` at the high-water RSS of the
//! process that spawned it (the parent's memory map is counted at `exec`), so inside the large
//! e2e process the push measured 129 MiB and the gzip bomb 316 MiB, the test process's own
//! peak, not the child's. Here the test process stays small and the number is the child's.
//!
//! `hostile`: peers and inputs that try to make the push use unbounded memory or time (issue
//! 22), each bounded and named; `hostile_sources`: the same for the findings left open there (a
//! trickled blob, an engine over TCP, too many manifests); `memory`: a 256 MiB push stays flat;
//! `pull_memory`: a 256 MiB pull into each kind of file stays flat; `source_safety`: files the
//! tool must not trust (among them a gzip bomb that fills neither disk nor memory).

#[path = "../support/mod.rs"]
mod support;

mod hostile;
mod hostile_sources;
mod memory;
mod pull_memory;
mod source_safety;
