//! `docker://[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST]`: an image in a registry, named as skopeo
//! and docker name it. No host means Docker Hub (`registry-1.docker.io`, `library/` in front of
//! a one-part name); `docker.io` and `index.docker.io` are Docker Hub too. Neither tag nor
//! digest means `latest`.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::{NameParts, check_repository, split_name, validate_tag};

/// The IMAGE prefix of a registry image.
pub const PREFIX: &str = "docker://";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// An image in a registry, as a `docker://` IMAGE names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]` of the registry API (`registry-1.docker.io` for Docker Hub).
    pub host: String,
    /// The repository path (`library/ubuntu`).
    pub repository: String,
    pub tag: Option<String>,
    /// `@sha256:...`: the image must have this digest, and is read by it.
    pub digest: Option<Digest>,
    /// The reference as given, without `docker://` (`ubuntu:24.04`).
    pub given: String,
}

impl ImageReference {
    /// The reference when `argument` is a `docker://` IMAGE; `None` for anything else.
    pub fn parse(argument: &str) -> Result<Option<ImageReference>> {
        let Some(rest) = argument.strip_prefix(PREFIX) else {
            return Ok(None);
        };
        let bad = |why: &str| {
            Error::input(format!("invalid image {argument:?}: {why}")).with_hint(
                "write it as docker://[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST], e.g. docker://ubuntu:24.04",
            )
        };
        if rest.is_empty() {
            return Err(bad("it names no image"));
        }
        let NameParts {
            host,
            path,
            tag,
            digest,
        } = split_name(rest, false).map_err(|why| bad(&why))?;
        let host = host.unwrap_or("docker.io");
        let tag = tag.map(str::to_string);
        if let Some(tag) = &tag {
            validate_tag(tag).map_err(|why| bad(&why))?;
        }
        let (host, repository) = match host {
            "docker.io" | "index.docker.io" | DOCKER_HUB if !path.contains('/') => {
                (DOCKER_HUB, format!("library/{path}"))
            }
            "docker.io" | "index.docker.io" => (DOCKER_HUB, path.to_string()),
            other => (other, path.to_string()),
        };
        check_repository(&repository).map_err(|why| bad(&why))?;
        Ok(Some(ImageReference {
            host: host.to_string(),
            repository,
            tag,
            digest,
            given: rest.to_string(),
        }))
    }

    /// What to ask the registry for: the digest when there is one, else the tag, else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for ImageReference {
    /// `docker://` and the reference as given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ImageReference {
        ImageReference::parse(text)
            .expect("valid")
            .expect("a docker:// image")
    }

    #[test]
    fn anything_without_the_prefix_is_not_a_registry_image() {
        for text in ["app.tar", "oci:dir", "ubuntu:24.04", "docker-archive:a.tar"] {
            assert_eq!(ImageReference::parse(text).expect("not an error"), None);
        }
    }

    #[test]
    fn no_host_is_docker_hub_with_library_for_one_part_names() {
        let r = parse("docker://ubuntu:24.04");
        assert_eq!(r.host, "registry-1.docker.io");
        assert_eq!(r.repository, "library/ubuntu");
        assert_eq!(r.tag.as_deref(), Some("24.04"));
        assert_eq!(r.given, "ubuntu:24.04");
        assert_eq!(r.reference(), "24.04");
        assert_eq!(r.to_string(), "docker://ubuntu:24.04");

        let r = parse("docker://bitnami/redis");
        assert_eq!(
            (r.host.as_str(), r.repository.as_str()),
            (DOCKER_HUB, "bitnami/redis")
        );
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), "latest");
    }

    #[test]
    fn docker_io_is_docker_hub() {
        for text in [
            "docker://docker.io/ubuntu",
            "docker://index.docker.io/library/ubuntu",
        ] {
            let r = parse(text);
            assert_eq!(r.host, DOCKER_HUB, "{text}");
            assert_eq!(r.repository, "library/ubuntu", "{text}");
        }
        assert_eq!(
            parse("docker://docker.io/team/app:1").repository,
            "team/app"
        );
    }

    #[test]
    fn a_first_part_with_a_dot_or_a_port_or_localhost_is_the_host() {
        let r = parse("docker://127.0.0.1:5000/team/app:1.0");
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        let r = parse("docker://localhost/app");
        assert_eq!(
            (r.host.as_str(), r.repository.as_str()),
            ("localhost", "app")
        );
        let r = parse("docker://ghcr.io/org/tools/cli");
        assert_eq!(r.repository, "org/tools/cli");
    }

    #[test]
    fn a_digest_is_read_by_digest_and_keeps_the_tag_for_naming() {
        let digest = Digest::of(b"m");
        let r = parse(&format!("docker://quay.io/team/app:2@{digest}"));
        assert_eq!(r.tag.as_deref(), Some("2"));
        assert_eq!(r.digest.as_ref(), Some(&digest));
        assert_eq!(r.reference(), digest.to_string());
        let r = parse(&format!("docker://quay.io/team/app@{digest}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.repository, "team/app");
    }

    #[test]
    fn malformed_references_are_input_errors_naming_the_image() {
        for (text, why) in [
            ("docker://", "names no image"),
            ("docker://app@sha256:12", "the digest is not sha256"),
            ("docker://team/App:1", "upper-case"),
            ("docker://team/app:-x", "must be 1-128"),
            ("docker://host.example:0/app", "port \"0\""),
            (
                "docker://team//app",
                "not a valid repository path component",
            ),
        ] {
            let error = ImageReference::parse(text).expect_err(text);
            assert_eq!(error.kind(), crate::error::Kind::Input);
            assert!(error.message().contains(why), "{text}: {error}");
            assert!(error.message().contains(text), "{text}: {error}");
        }
    }
}
