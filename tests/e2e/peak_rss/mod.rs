//! The tests that hold a child's peak RSS to a limit. `support::child::measured` runs the
//! binary under `/usr/bin/time`, so the number is the child's own even inside this large test
//! process (a child spawned straight from it starts its `ru_maxrss` at this process's peak:
//! the push measured 129 MiB here that way, and these tests needed a test binary of their own).
//!
//! `hostile`: peers and inputs that try to make the push use unbounded memory or time (issue
//! 22), each bounded and named; `hostile_sources`: the same for the findings left open there (a
//! trickled blob, an engine over TCP, too many manifests); `memory`: a 256 MiB push stays flat;
//! `pull_memory`: a 256 MiB pull into each kind of file stays flat; `source_safety`: files the
//! tool must not trust (among them a gzip bomb that fills neither disk nor memory).

mod hostile;
mod hostile_sources;
mod memory;
mod pull_memory;
mod source_safety;
