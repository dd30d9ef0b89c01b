//! Image names inside sources (ref name annotations, containerd names, docker `RepoTags`): which
//! ones a REF picks, and the tag a name carries.

use crate::reference::is_valid_tag;

/// The tag a name carries: the name itself when it is a bare tag (`1.0`), else the part after
/// the last `:` of a full name (`docker.io/library/foo:1.0`). `None` when there is no valid tag.
pub(crate) fn tag_of(name: &str) -> Option<String> {
    let name = name.split('@').next().unwrap_or_default();
    let tag = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[colon + 1..],
        Some(_) => return None,
        None if name.contains('/') => return None,
        None => name,
    };
    is_valid_tag(tag).then(|| tag.to_string())
}

/// A docker `RepoTag` as docker reads it: one without a tag (`app`, `localhost:5000/app`) is
/// `:latest`.
pub(crate) fn with_default_tag(name: &str) -> String {
    let tagged = name.contains('@')
        || name
            .rfind(':')
            .is_some_and(|colon| !name[colon..].contains('/'));
    if tagged {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Whether REF (from `PATH:REF`) picks an image going by `name`: the same text, the same docker
/// name once normalised (`foo:1.0` is `docker.io/library/foo:1.0`, `foo` is `foo:latest`), or,
/// for a bare tag REF, the tag of a full name.
pub(crate) fn matches_name(name: &str, reference: &str) -> bool {
    if name == reference {
        return true;
    }
    if is_valid_tag(reference) && tag_of(name).as_deref() == Some(reference) {
        return true;
    }
    // A bare REF may be a name too: `app` picks `app:latest`, as `docker run app` does.
    has_repository(name) && normalise(name) == normalise(reference)
}

/// Whether `text` looks like `repository:tag` or `host/repository...` rather than a bare tag.
fn has_repository(text: &str) -> bool {
    text.contains('/') || text.contains(':')
}

/// A docker name in full: `docker.io/library/` added where docker would add it, `:latest`
/// where there is neither tag nor digest.
fn normalise(name: &str) -> String {
    let (name, digest) = match name.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (name, None),
    };
    let (repository, tag) = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => (&name[..colon], Some(&name[colon + 1..])),
        _ => (name, None),
    };
    let repository = match repository.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            let host = if host == "index.docker.io" {
                "docker.io"
            } else {
                host
            };
            match (host, rest.contains('/')) {
                ("docker.io", false) => format!("docker.io/library/{rest}"),
                _ => format!("{host}/{rest}"),
            }
        }
        Some(_) => format!("docker.io/{repository}"),
        None => format!("docker.io/library/{repository}"),
    };
    match (tag, digest) {
        (Some(tag), Some(digest)) => format!("{repository}:{tag}@{digest}"),
        (Some(tag), None) => format!("{repository}:{tag}"),
        (None, Some(digest)) => format!("{repository}@{digest}"),
        (None, None) => format!("{repository}:latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_of_a_bare_tag_or_a_full_name() {
        assert_eq!(tag_of("1.0").as_deref(), Some("1.0"));
        assert_eq!(tag_of("docker.io/library/foo:1.0").as_deref(), Some("1.0"));
        assert_eq!(tag_of("localhost:5000/foo:v2").as_deref(), Some("v2"));
        assert_eq!(tag_of("localhost:5000/foo"), None);
        assert_eq!(tag_of("foo/bar"), None);
        assert_eq!(tag_of("-bad"), None);
        assert_eq!(tag_of(""), None);
    }

    #[test]
    fn a_repo_tag_without_a_tag_is_latest_as_docker_reads_it() {
        assert_eq!(with_default_tag("test_image_1"), "test_image_1:latest");
        assert_eq!(
            with_default_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(with_default_tag("app:1.0"), "app:1.0");
        assert_eq!(
            with_default_tag("localhost:5000/app:2"),
            "localhost:5000/app:2"
        );
    }

    #[test]
    fn docker_names_match_in_short_or_full_form() {
        let full = "docker.io/library/foo:1.0";
        for reference in [
            "foo:1.0",
            "docker.io/library/foo:1.0",
            "library/foo:1.0",
            "1.0",
        ] {
            assert!(matches_name(full, reference), "{reference}");
        }
        assert!(matches_name("foo:1.0", "docker.io/library/foo:1.0"));
        assert!(!matches_name("bar", "docker.io/library/bar:latest"));
        assert!(matches_name("localhost/app:1", "localhost/app:1"));
        assert!(!matches_name(full, "bar:1.0"));
        assert!(!matches_name(full, "foo:2.0"));
        assert!(!matches_name("quay.io/foo:1.0", "foo:1.0"));
        assert!(!matches_name("1.0", "2.0"));
        assert!(matches_name("test_image_1:latest", "test_image_1"));
        assert!(!matches_name("test_image_1:2", "test_image_1"));
    }

    #[test]
    fn normalising_adds_what_docker_adds() {
        assert_eq!(normalise("foo"), "docker.io/library/foo:latest");
        assert_eq!(normalise("user/foo:1"), "docker.io/user/foo:1");
        assert_eq!(
            normalise("index.docker.io/foo:1"),
            "docker.io/library/foo:1"
        );
        assert_eq!(normalise("localhost:5000/foo"), "localhost:5000/foo:latest");
    }
}
