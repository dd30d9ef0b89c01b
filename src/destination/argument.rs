//! The DESTINATION of a pull, the mirror of push's IMAGE forms: `oci:DIR[:REF]`,
//! `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME:TAG]`, `docker-daemon:NAME[:TAG]`, or
//! nothing (the local engine). As in skopeo, the path ends at the first `:`.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::reference::validate_tag;

/// Where a pulled image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullTarget {
    /// The local engine; `name` (`NAME[:TAG]`) or, without it, the image's own reference.
    Engine { name: Option<String> },
    /// An OCI image layout directory; `reference` names the image in `index.json`.
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// One tar holding an OCI layout.
    OciArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    /// What `docker load -i` reads; `name` (`NAME:TAG`) goes into `RepoTags`.
    DockerArchive { file: PathBuf, name: Option<String> },
}

const FORMS_HINT: &str = "write oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG] or docker-daemon:NAME[:TAG], or leave DESTINATION out to load into the local engine";

impl PullTarget {
    /// Parses the optional DESTINATION argument.
    pub fn parse(text: Option<&str>) -> Result<PullTarget> {
        let Some(text) = text else {
            return Ok(PullTarget::Engine { name: None });
        };
        let bad = |why: &str| {
            Error::input(format!("invalid destination {text:?}: {why}")).with_hint(FORMS_HINT)
        };
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(bad("it names no kind of destination").with_hint(format!(
                "for files, write oci:{text} (a layout directory) or docker-archive:{text} (a docker load file); for the engine, docker-daemon:{text}"
            )));
        };
        let (path, reference) = match rest.split_once(':') {
            Some((path, reference)) => (path, Some(reference.to_string())),
            None => (rest, None),
        };
        let reference = reference.filter(|r| !r.is_empty());
        if kind != "docker-daemon" && path.is_empty() {
            return Err(bad("the path is empty"));
        }
        match kind {
            "oci" | "oci-archive" => {
                if let Some(reference) = &reference {
                    check_ref_name(reference).map_err(|why| bad(&why))?;
                }
                let path = PathBuf::from(path);
                Ok(if kind == "oci" {
                    PullTarget::Layout {
                        dir: path,
                        reference,
                    }
                } else {
                    PullTarget::OciArchive {
                        file: path,
                        reference,
                    }
                })
            }
            "docker-archive" => {
                if let Some(name) = &reference {
                    check_engine_name(name).map_err(|why| bad(&why))?;
                }
                Ok(PullTarget::DockerArchive {
                    file: PathBuf::from(path),
                    name: reference,
                })
            }
            "docker-daemon" => {
                if rest.is_empty() {
                    return Err(bad("the image name is empty"));
                }
                check_engine_name(rest).map_err(|why| bad(&why))?;
                Ok(PullTarget::Engine {
                    name: Some(rest.to_string()),
                })
            }
            _ => Err(bad(&format!("{kind:?} is not a kind of destination"))),
        }
    }

    /// Whether the destination holds one platform only (the engine, a docker archive).
    pub fn single_platform(&self) -> bool {
        matches!(
            self,
            PullTarget::Engine { .. } | PullTarget::DockerArchive { .. }
        )
    }
}

impl fmt::Display for PullTarget {
    /// As the user would write it, without the reference: `oci:DIR`, `the local engine`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullTarget::Engine { .. } => f.write_str("the local engine"),
            PullTarget::Layout { dir, .. } => write!(f, "oci:{}", dir.display()),
            PullTarget::OciArchive { file, .. } => write!(f, "oci-archive:{}", file.display()),
            PullTarget::DockerArchive { file, .. } => {
                write!(f, "docker-archive:{}", file.display())
            }
        }
    }
}

/// A ref name skopeo and umoci accept: no `/`-only or control characters, at most 128.
fn check_ref_name(reference: &str) -> std::result::Result<(), String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || "._-:/@+".contains(c);
    if reference.len() > 128 || !reference.chars().all(fine) {
        return Err(format!(
            "REF {reference:?} may hold only letters, digits and ._-:/@+ (at most 128)"
        ));
    }
    Ok(())
}

/// `NAME[:TAG]` as docker takes it: a lower-case name, a valid tag.
fn check_engine_name(name: &str) -> std::result::Result<(), String> {
    let (path, tag) = match name.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (name, None),
    };
    if path.is_empty()
        || path
            .chars()
            .any(|c| c.is_ascii_uppercase() || c.is_whitespace())
    {
        return Err(format!(
            "{name:?} is not an image name (lower case, such as app:1.0)"
        ));
    }
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PullTarget {
        PullTarget::parse(Some(text)).expect(text)
    }

    #[test]
    fn nothing_is_the_local_engine() {
        assert_eq!(
            PullTarget::parse(None).unwrap(),
            PullTarget::Engine { name: None }
        );
        assert_eq!(
            parse("docker-daemon:app:1.0"),
            PullTarget::Engine {
                name: Some("app:1.0".into())
            }
        );
        assert_eq!(
            parse("docker-daemon:localhost:5000/app"),
            PullTarget::Engine {
                name: Some("localhost:5000/app".into())
            }
        );
    }

    #[test]
    fn files_split_at_the_first_colon() {
        assert_eq!(
            parse("oci:./layout:app"),
            PullTarget::Layout {
                dir: "./layout".into(),
                reference: Some("app".into())
            }
        );
        assert_eq!(
            parse("oci:/tmp/l"),
            PullTarget::Layout {
                dir: "/tmp/l".into(),
                reference: None
            }
        );
        assert_eq!(
            parse("oci-archive:app.tar:1.0"),
            PullTarget::OciArchive {
                file: "app.tar".into(),
                reference: Some("1.0".into())
            }
        );
        assert_eq!(
            parse("docker-archive:app.tar:team/app:1.0"),
            PullTarget::DockerArchive {
                file: "app.tar".into(),
                name: Some("team/app:1.0".into())
            }
        );
    }

    #[test]
    fn bad_forms_say_which_forms_there_are() {
        for bad in [
            "app.tar",
            "tarball:app.tar",
            "oci:",
            "docker-daemon:",
            "docker-archive:a.tar:App:1",
            "oci:dir:a b",
        ] {
            let error = PullTarget::parse(Some(bad)).expect_err(bad);
            assert_eq!(error.kind(), crate::error::Kind::Input, "{bad}");
            assert!(error.hint().is_some(), "{bad}");
        }
        let error = PullTarget::parse(Some("app.tar")).unwrap_err();
        assert!(error.hint().unwrap().contains("docker-archive:app.tar"));
    }

    #[test]
    fn only_engines_and_docker_archives_take_one_platform() {
        assert!(parse("docker-archive:a.tar").single_platform());
        assert!(PullTarget::parse(None).unwrap().single_platform());
        assert!(!parse("oci:d").single_platform());
        assert!(!parse("oci-archive:a.tar").single_platform());
    }
}
