//! The DESTINATION argument in all its forms: `[HOST[:PORT]/]OWNER/NAME[:TAG|@sha256:DIGEST]`
//! with idpbuilder's Gitea as the default host, a leading `https://`, `oci://` or `http://`, and
//! the registry-only forms (`HOST[:PORT]`, `HOST[:PORT]/`, nothing at all) whose repository is
//! made from the user name and the image's own name. OCI's lower-case rule is explained to the
//! user.

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
    /// DESTINATION began with `http://`: talk plain HTTP, as `--plain-http` does (the caller
    /// ORs the two).
    pub plain_http: bool,
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

/// The DESTINATION argument as given, before the credentials and the image are known.
///
/// Registry-only means: no DESTINATION at all (the default host), or, once a leading scheme is
/// dropped, text without `@` that is a host with at most one trailing `/` and nothing after it.
/// Without a scheme the text must also look like a host (a `.` or a `:`, or `localhost`), as
/// Docker decides for a first path part: `registry.example.com`, `localhost:5000/`,
/// `127.0.0.1:5000` and `[::1]:5000` are registries, `app` is a one-part repository at the
/// default host, and `app:1.0` is a registry whose port is not a number (an error whose hint
/// asks for `OWNER/app:1.0`). With a scheme the first part is always the host
/// (`https://myregistry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationArg {
    /// A repository was named.
    Full(Destination),
    /// Only a registry: the repository comes from [`DestinationArg::complete`].
    RegistryOnly { host: String, plain_http: bool },
}

impl DestinationArg {
    /// Parses the optional DESTINATION argument; `None` is the default host, registry-only.
    pub fn parse(text: Option<&str>) -> Result<DestinationArg> {
        let Some(text) = text else {
            return Ok(DestinationArg::RegistryOnly {
                host: DEFAULT_HOST.to_string(),
                plain_http: false,
            });
        };
        let (scheme, rest) = split_scheme(text)?;
        let plain_http = scheme == Some(Scheme::Http);
        let host_only = rest.strip_suffix('/').unwrap_or(rest);
        let registry_only = !host_only.contains('/')
            && !host_only.contains('@')
            && (scheme.is_some() || looks_like_host(host_only));
        if !registry_only {
            return parse_full(text, rest, scheme.is_some(), plain_http).map(DestinationArg::Full);
        }
        if host_only.is_empty() {
            return Err(
                Error::input(format!("invalid destination {text:?}: it names no host"))
                    .with_hint(FORMS_HINT),
            );
        }
        validate_host(host_only).map_err(|why| {
            match name_and_tag_typed_as_host(host_only, scheme.is_some()) {
                Some((name, tag)) => Error::input(format!(
                    "invalid destination {text:?}: a repository needs an owner, and as a registry HOST:PORT, {tag:?} is not a port"
                ))
                .with_hint(format!("write OWNER/{name}:{tag}, e.g. giteaadmin/{name}:{tag}")),
                None => Error::input(format!("invalid destination {text:?}: {why}"))
                    .with_hint(FORMS_HINT),
            }
        })?;
        Ok(DestinationArg::RegistryOnly {
            host: host_only.to_string(),
            plain_http,
        })
    }

    /// The registry the image goes to, known before the repository is.
    pub fn host(&self) -> &str {
        match self {
            DestinationArg::Full(destination) => &destination.host,
            DestinationArg::RegistryOnly { host, .. } => host,
        }
    }

    /// Whether DESTINATION began with `http://`.
    pub fn plain_http(&self) -> bool {
        match self {
            DestinationArg::Full(destination) => destination.plain_http,
            DestinationArg::RegistryOnly { plain_http, .. } => *plain_http,
        }
    }

    /// The destination in full. A registry-only one becomes `HOST/OWNER/NAME[:TAG]`: OWNER is
    /// `user` (the user name of the credentials in use) in lower case; NAME and TAG are the last
    /// path part and the tag of `source_name`, the image's own name as a reference (`app:1.0`,
    /// `docker.io/library/ubuntu:24.04`, `localhost/app`; not a bare tag such as a ref name
    /// `1.0`). Without a tag there, the target is [`Target::Default`]. A full destination is
    /// returned as it is.
    pub fn complete(self, user: Option<&str>, source_name: Option<&str>) -> Result<Destination> {
        let (host, plain_http) = match self {
            DestinationArg::Full(destination) => return Ok(destination),
            DestinationArg::RegistryOnly { host, plain_http } => (host, plain_http),
        };
        let scheme = if plain_http { "http://" } else { "" };
        let full_form = format!("idpbuilder push IMAGE {scheme}{host}/OWNER/NAME:TAG");
        let cannot = |why: String| {
            Error::input(format!("cannot name the repository at {host}: {why}"))
                .with_hint(format!("name it in full: {full_form}"))
        };
        let Some(user) = user.map(str::trim).filter(|u| !u.is_empty()) else {
            return Err(Error::input(format!(
                "cannot name the repository at {host}: there is no user name to use as its owner"
            ))
            .with_hint(format!(
                "log in with --username and --password-stdin, or name it in full: {full_form}"
            )));
        };
        let Some(source_name) = source_name.map(str::trim).filter(|n| !n.is_empty()) else {
            return Err(cannot(
                "the image has no single name (none, or several) to take NAME:TAG from".to_string(),
            ));
        };
        let owner = user.to_lowercase();
        if !valid_component(&owner) {
            return Err(cannot(format!(
                "the user name {user:?} cannot be a repository owner"
            )));
        }
        let (name, tag) = name_and_tag(source_name);
        if !valid_component(name) {
            return Err(cannot(format!(
                "the image's name {source_name:?} does not end in a valid repository name"
            )));
        }
        let repository = format!("{owner}/{name}");
        if repository.len() > 255 {
            return Err(cannot(format!(
                "{repository:?} is longer than 255 characters"
            )));
        }
        let target = match tag {
            Some(tag) => {
                validate_tag(tag).map_err(|why| {
                    cannot(format!(
                        "the image's name {source_name:?} has a bad tag: {why}"
                    ))
                })?;
                Target::Tag(tag.to_string())
            }
            None => Target::Default,
        };
        Ok(Destination {
            host,
            repository,
            target,
            plain_http,
        })
    }
}

/// The usual hint for a malformed DESTINATION.
const FORMS_HINT: &str = "write it as [HOST[:PORT]/]OWNER/NAME[:TAG][@sha256:DIGEST], e.g. giteaadmin/app:1.0, or only as HOST[:PORT]";

impl Destination {
    /// Parses a DESTINATION that names a repository (a leading `https://`, `oci://` or
    /// `http://` allowed); a registry-only one is an error here, as it needs
    /// [`DestinationArg::complete`].
    pub fn parse(text: &str) -> Result<Destination> {
        match DestinationArg::parse(Some(text))? {
            DestinationArg::Full(destination) => Ok(destination),
            DestinationArg::RegistryOnly { host, .. } => Err(Error::input(format!(
                "invalid destination {text:?}: it names the registry {host} but no repository"
            ))
            .with_hint(format!(
                "write it as {host}/OWNER/NAME[:TAG], e.g. {host}/giteaadmin/app:1.0"
            ))),
        }
    }
}

/// `[HOST[:PORT]/]OWNER/NAME[:TAG|@DIGEST]`, the scheme (if any) already cut off `text` into
/// `rest`. With a scheme, the first part is the host whatever it looks like.
fn parse_full(text: &str, rest: &str, has_scheme: bool, plain_http: bool) -> Result<Destination> {
    let bad = |why: &str| {
        Error::input(format!("invalid destination {text:?}: {why}")).with_hint(FORMS_HINT)
    };
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let NameParts {
        host,
        path: repository,
        tag,
        digest,
    } = split_name(rest, has_scheme).map_err(|why| bad(&why))?;
    let host = match host {
        Some(host) => host.to_string(),
        None if has_scheme => return Err(bad("the repository is missing")),
        None => DEFAULT_HOST.to_string(),
    };
    if let Some(owner) = repository.strip_suffix('/') {
        return Err(bad(&format!("the NAME after {owner}/ is missing")));
    }
    validate_repository(repository).map_err(|e| match e {
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
        plain_http,
    })
}

/// `[HOST[:PORT]/]PATH[:TAG][@DIGEST]` cut into its parts the way docker cuts a name.
pub(crate) struct NameParts<'a> {
    /// The first part, when `host_first` or when it looks like a host (checked).
    pub host: Option<&'a str>,
    pub path: &'a str,
    /// After the last `:` of the last path component (not checked).
    pub tag: Option<&'a str>,
    pub digest: Option<Digest>,
}

/// Cuts `name` into [`NameParts`]; the error says why, for the caller's own message.
pub(crate) fn split_name(
    name: &str,
    host_first: bool,
) -> std::result::Result<NameParts<'_>, String> {
    let (name, digest) = match name.split_once('@') {
        Some((name, digest)) => {
            let digest = Digest::parse(digest)
                .map_err(|_| "the digest is not sha256:<64 hex>".to_string())?;
            (name, Some(digest))
        }
        None => (name, None),
    };
    let (host, path) = match name.split_once('/') {
        Some((first, path)) if host_first || looks_like_host(first) => (Some(first), path),
        _ => (None, name),
    };
    if let Some(host) = host {
        validate_host(host)?;
    }
    let last_slash = path.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match path[last_slash..].rfind(':') {
        Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
        None => (path, None),
    };
    Ok(NameParts {
        host,
        path,
        tag,
        digest,
    })
}

impl fmt::Display for Destination {
    /// `HOST/REPO[:TAG][@DIGEST]`, with `http://` for plain HTTP and `https://` where the host
    /// would not be read as one without it, so that the text parses back to the same place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plain_http {
            f.write_str("http://")?;
        } else if !looks_like_host(&self.host) {
            f.write_str("https://")?;
        }
        write!(f, "{}/{}", self.host, self.repository)?;
        match &self.target {
            Target::Tag(tag) => write!(f, ":{tag}"),
            Target::Digest(digest) => write!(f, "@{digest}"),
            Target::TagAndDigest(tag, digest) => write!(f, ":{tag}@{digest}"),
            Target::Default => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `https://` or `oci://`: dropped.
    Https,
    /// `http://`: plain HTTP.
    Http,
}

/// Cuts a leading `SCHEME://` off DESTINATION (any case); other schemes are an error.
fn split_scheme(text: &str) -> Result<(Option<Scheme>, &str)> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok((None, text));
    };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return Ok((None, text));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" | "oci" => Ok((Some(Scheme::Https), rest)),
        "http" => Ok((Some(Scheme::Http), rest)),
        _ => Err(Error::input(format!(
            "invalid destination {text:?}: {scheme}:// is not a destination scheme"
        ))
        .with_hint(format!(
            "drop {scheme}://; DESTINATION is [HOST[:PORT]/]OWNER/NAME[:TAG], with https://, oci:// or http:// (plain HTTP) allowed in front"
        ))),
    }
}

/// `app:1.0` read as a registry: a name and a tag where a host and a port were expected.
/// Returns them when the text looks like that (no scheme, no `.` or brackets before the `:`,
/// not `localhost`, something other than digits after it).
fn name_and_tag_typed_as_host(text: &str, has_scheme: bool) -> Option<(&str, &str)> {
    let (name, tag) = text.split_once(':')?;
    let name_like =
        !has_scheme && !name.is_empty() && !name.contains(['.', '[', ']']) && name != "localhost";
    let tag_like = !tag.is_empty() && !tag.bytes().all(|b| b.is_ascii_digit());
    (name_like && tag_like).then_some((name, tag))
}

/// NAME and TAG of an image's own name: the last path part, and the tag after its last `:`.
/// A `SCHEME://` in front and an `@DIGEST` behind are ignored.
fn name_and_tag(source_name: &str) -> (&str, Option<&str>) {
    let name = source_name
        .split_once("://")
        .map_or(source_name, |(_, rest)| rest);
    let name = name.split('@').next().unwrap_or_default();
    let last = name.rsplit('/').next().unwrap_or_default();
    match last.split_once(':') {
        Some((name, tag)) => (name, Some(tag)),
        None => (last, None),
    }
}

/// Docker's rule: the first component is a host when it has a `.` or a `:`, or is `localhost`.
pub(crate) fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

pub(crate) fn validate_host(host: &str) -> std::result::Result<(), String> {
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

/// Checks a repository path as OCI names it (an image to copy from); the text says what is
/// wrong.
pub(crate) fn check_repository(repository: &str) -> std::result::Result<(), String> {
    validate_repository(repository).map_err(|e| match e {
        RepoError::UpperCase => format!(
            "repository {repository:?} has upper-case letters; OCI registries require lower case"
        ),
        RepoError::Invalid(why) => why,
    })
}

enum RepoError {
    UpperCase,
    Invalid(String),
}

/// OCI distribution's `path-component ( '/' path-component )*`, where a component is
/// `[a-z0-9]+ ( ( '.' | '_' | '__' | '-'+ ) [a-z0-9]+ )*`.
fn validate_repository(repository: &str) -> std::result::Result<(), RepoError> {
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

/// `[\w][\w.-]{0,127}`; the error says what a tag may hold.
pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
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

/// The host name of `host[:port]` or `[v6]:port`, lower case, without a trailing dot.
pub fn host_name(host: &str) -> String {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(inside, _)| inside)
    } else {
        match host.rsplit_once(':') {
            // A bare IPv6 address has several colons and no port.
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    normalise_host_name(name)
}

/// A host name as compared: trimmed, lower case, without a trailing dot.
pub fn normalise_host_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
