//! The DESTINATION argument: `[HOST[:PORT]/]OWNER/NAME[:TAG|@sha256:DIGEST]`, with idpbuilder's
//! Gitea as the default host and OCI's lower-case rule explained to the user.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry idpbuilder runs; used when DESTINATION names no host.
pub const DEFAULT_HOST: &str = "gitea.cnoe.localtest.me:8443";

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `host[:port]`, as the user wrote it (or the default).
    pub host: String,
    /// The repository path, e.g. `giteaadmin/app`.
    pub repository: String,
    /// What is pushed last: a tag, or nothing more than the digest itself.
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `:TAG` given.
    Tag(String),
    /// `@sha256:...` given: the image must have this digest; no tag is created.
    Digest(Digest),
    /// `:TAG@sha256:...`: the tag is pushed, and only if the image has this digest.
    TagAndDigest(String, Digest),
    /// Neither: the source's own tag, else `latest`.
    Default,
}

impl Destination {
    /// Parses DESTINATION as the SPEC describes it.
    pub fn parse(text: &str) -> Result<Destination> {
        let bad = |why: &str| {
            Error::input(format!("invalid destination {text:?}: {why}"))
                .with_hint("write it as [HOST[:PORT]/]OWNER/NAME[:TAG], e.g. giteaadmin/app:1.0")
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let digest =
                    Digest::parse(digest).map_err(|_| bad("the digest is not sha256:<64 hex>"))?;
                (rest, Some(digest))
            }
            None => (text, None),
        };
        let (host, path) = match rest.split_once('/') {
            Some((first, path)) if looks_like_host(first) => (first.to_string(), path),
            _ => (DEFAULT_HOST.to_string(), rest),
        };
        validate_host(&host).map_err(|why| bad(&why))?;
        // A tag is after the last ':' of the last path component.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
            None => (path, None),
        };
        validate_repository(text, repository).map_err(|e| match e {
            RepoError::UpperCase => Error::input(format!(
                "repository {repository:?} in {text:?} has upper-case letters; OCI registries and Gitea require lower case"
            ))
            .with_hint(format!("use {:?}", repository.to_lowercase())),
            RepoError::Invalid(why) => bad(&why),
        })?;
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|why| bad(&why))?;
        }
        let target = match (tag, digest) {
            (Some(tag), Some(digest)) => Target::TagAndDigest(tag.to_string(), digest),
            (Some(tag), None) => Target::Tag(tag.to_string()),
            (None, Some(digest)) => Target::Digest(digest),
            (None, None) => Target::Default,
        };
        Ok(Destination {
            host,
            repository: repository.to_string(),
            target,
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        match &self.target {
            Target::Tag(tag) => write!(f, ":{tag}"),
            Target::Digest(digest) => write!(f, "@{digest}"),
            Target::TagAndDigest(tag, digest) => write!(f, ":{tag}@{digest}"),
            Target::Default => Ok(()),
        }
    }
}

/// Docker's rule: the first component is a host when it has a `.` or a `:`, or is `localhost`.
fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn validate_host(host: &str) -> std::result::Result<(), String> {
    // The port is after the last ':', unless that ':' is inside an IPv6 address's brackets.
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("port {port:?} is not a number from 1 to 65535"));
    }
    let ipv6 = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .map(|n| n.parse::<std::net::Ipv6Addr>().is_ok());
    let name_ok = !name.is_empty()
        && (ipv6 == Some(true)
            || ipv6.is_none()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }));
    // What the registry client will make of it: URL rules reject some names that pass the
    // checks above, such as a dotted number that is not an IPv4 address (`1.2.3.999`).
    if !name_ok || url::Url::parse(&format!("https://{host}/")).is_err() {
        return Err(format!("{name:?} is not a valid host name"));
    }
    Ok(())
}

enum RepoError {
    UpperCase,
    Invalid(String),
}

/// OCI distribution's `path-component ( '/' path-component )*`, where a component is
/// `[a-z0-9]+ ( ( '.' | '_' | '__' | '-'+ ) [a-z0-9]+ )*`.
fn validate_repository(_whole: &str, repository: &str) -> std::result::Result<(), RepoError> {
    if repository.is_empty() {
        return Err(RepoError::Invalid("the repository is missing".into()));
    }
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(RepoError::UpperCase);
    }
    if repository.len() > 255 {
        return Err(RepoError::Invalid(
            "the repository is longer than 255 characters".into(),
        ));
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(RepoError::Invalid(format!(
                "{component:?} is not a valid repository path component (lower-case letters, digits and single . _ __ - separators)"
            )));
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ))
    }
}

/// Checks a tag taken from the source (ref name, RepoTag) before using it as the default.
pub fn is_valid_tag(tag: &str) -> bool {
    validate_tag(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Destination {
        Destination::parse(text).unwrap()
    }

    #[test]
    fn no_host_means_idpbuilders_gitea() {
        let d = parse("giteaadmin/app:1.0");
        assert_eq!(d.host, DEFAULT_HOST);
        assert_eq!(d.repository, "giteaadmin/app");
        assert_eq!(d.target, Target::Tag("1.0".into()));
    }

    #[test]
    fn host_with_port_and_nested_path() {
        let d = parse("127.0.0.1:5000/org/team/app:v2");
        assert_eq!(d.host, "127.0.0.1:5000");
        assert_eq!(d.repository, "org/team/app");
        assert_eq!(d.to_string(), "127.0.0.1:5000/org/team/app:v2");
    }

    #[test]
    fn localhost_is_a_host_even_without_dot() {
        assert_eq!(parse("localhost/app").host, "localhost");
        assert_eq!(parse("localhost:5000/app").host, "localhost:5000");
    }

    #[test]
    fn first_part_without_dot_or_colon_is_an_owner() {
        let d = parse("giteaadmin/app");
        assert_eq!(d.host, DEFAULT_HOST);
        assert_eq!(d.target, Target::Default);
    }

    #[test]
    fn digest_without_tag_and_tag_with_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let d = parse(&format!("cnoe.localtest.me:8443/giteaadmin/app@{digest}"));
        assert_eq!(d.target, Target::Digest(Digest::parse(&digest).unwrap()));
        let d = parse(&format!("giteaadmin/app:1.0@{digest}"));
        assert_eq!(
            d.target,
            Target::TagAndDigest("1.0".into(), Digest::parse(&digest).unwrap())
        );
    }

    #[test]
    fn upper_case_repository_names_the_fix() {
        let err = Destination::parse("giteaadmin/MyApp:1.0").unwrap_err();
        assert!(err.message().contains("upper-case"), "{}", err.message());
        assert_eq!(err.hint(), Some("use \"giteaadmin/myapp\""));
    }

    #[test]
    fn upper_case_host_and_tag_are_fine() {
        let d = parse("Registry.Example.com/app:V1");
        assert_eq!(d.host, "Registry.Example.com");
        assert_eq!(d.target, Target::Tag("V1".into()));
    }

    #[test]
    fn malformed_destinations_are_input_errors() {
        for bad in [
            "",
            "host.com/",
            "app:",
            "giteaadmin//app",
            "giteaadmin/app:-x",
            "giteaadmin/app@sha256:12",
            "host.com:99999/app",
            "host.com:/app",
            "giteaadmin/-app",
            "giteaadmin/a..b",
            "ho st.com/app",
        ] {
            let err = Destination::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::Kind::Input, "{bad}");
            assert!(err.hint().is_some(), "{bad}");
        }
    }

    #[test]
    fn ipv6_hosts_in_brackets_with_or_without_port() {
        // Found while writing the destination fuzz target: the port was looked for after a
        // colon inside the brackets.
        assert_eq!(parse("[::1]/team/app").host, "[::1]");
        let d = parse("[fe80::1]:5000/team/app:1.0");
        assert_eq!(d.host, "[fe80::1]:5000");
        assert_eq!(d.to_string(), "[fe80::1]:5000/team/app:1.0");
        for bad in ["[::1]:0/app", "[::1]:x/app", "[not.v6]/app", "[::1/app"] {
            let err = Destination::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::Kind::Input, "{bad}");
        }
    }

    #[test]
    fn hosts_the_registry_client_cannot_use_are_refused_here() {
        // These were accepted here, then refused by the URL parser after the whole image was
        // read. The destination fuzz target now checks that every accepted destination makes a
        // valid URL.
        for bad in ["1.2.3.999/app", "1.2.3.4.5:80/app"] {
            let err = Destination::parse(bad).unwrap_err();
            assert!(
                err.message().contains("not a valid host name"),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(parse("10.0.0.1:5000/app").host, "10.0.0.1:5000");
    }

    #[test]
    fn separators_follow_the_oci_grammar() {
        assert!(valid_component("a.b_c__d---e"));
        assert!(!valid_component("a___b"));
        assert!(!valid_component("a._b"));
        assert!(!valid_component("a-"));
    }

    #[test]
    fn source_tags_are_checked() {
        assert!(is_valid_tag("1.0"));
        assert!(!is_valid_tag("docker.io/library/x:1"));
    }
}
