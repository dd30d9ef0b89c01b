//! The push as a library: a whole push driven in-process through `session::push`, into a real
//! registry, checked with skopeo.

use crate::support;

#[allow(unused_imports, reason = "the skopeo checks of a registry")]
use support::skopeo::TestRegistry;

use clap::Parser;
use idpbuilder_push::cli::{Cli, Command};
use idpbuilder_push::session;
use support::fixtures::{self, ImageSpec};
use support::registry::{Registry, RegistryOptions};

#[tokio::test(flavor = "multi_thread")]
async fn a_layout_pushed_in_process_lands_with_its_digest() {
    idpbuilder_push::registry::install_default_provider();
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("l");
    let image = fixtures::oci_layout(&layout, &ImageSpec::new("1.0", &[30_000, 200_000]));
    let destination = format!("{}/team/library:1.0", registry.host());
    // Credentials on the command line keep the cluster and docker's config out of it.
    let cli = Cli::try_parse_from([
        "idpbuilder",
        "push",
        "-q",
        "--plain-http",
        "-u",
        "nobody",
        "-p",
        "unused",
        &layout.display().to_string(),
        &destination,
    ])
    .expect("arguments parse");
    #[allow(
        irrefutable_let_patterns,
        reason = "push is not the only subcommand for long"
    )]
    let Command::Push(args) = cli.command else {
        panic!("a push command");
    };

    let summary = session::push(&args, false).await.expect("pushed");

    assert_eq!(summary.digest, image.manifest_digest);
    assert_eq!(
        summary.reference,
        format!("{destination}@{}", image.manifest_digest)
    );
    assert_eq!(summary.blobs_uploaded, image.blob_digests.len());
    let (raw, _) = registry.skopeo_inspect_raw("team/library:1.0");
    assert_eq!(fixtures::sha256(&raw), image.manifest_digest);
}
