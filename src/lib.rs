//! idpbuilder-push: copy OCI images from local files into an OCI registry, above all
//! idpbuilder's Gitea. The binary (`src/main.rs`) wires these modules together; they live in a
//! library so that fuzz targets and benchmarks can reach the parsers.

pub mod cli;
pub mod cluster;
pub mod completion;
pub mod credentials;
pub mod destination;
pub mod digest;
pub mod error;
pub mod oci;
pub mod passthrough;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod report;
pub mod session;
pub mod source;
pub mod terminal;
pub mod text;

#[cfg(test)]
#[path = "layering_tests.rs"]
mod layering_tests;

#[cfg(test)]
#[path = "readme_layout_tests.rs"]
mod readme_layout_tests;
