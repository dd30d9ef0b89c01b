//! An export that holds only part of an index: Docker's containerd store saves the index an
//! image was pulled by, but only the platforms it has. Which part of such an index is pushed
//! is decided here, for an engine's export and a `docker save` file alike: the whole index
//! when every manifest it names is there, else the one image that is.

use super::document::Descriptor;

/// What of an index is present.
#[derive(Debug)]
pub enum Part<'a> {
    /// Every manifest the index names: push the index.
    Whole,
    /// Exactly one image (attestations aside): push its manifest alone.
    One(&'a Descriptor),
    /// Some images but not all: one must be picked (`--platform`); these are present.
    Several(Vec<&'a Descriptor>),
    /// None of its images.
    Nothing,
}

/// Which part of the index listing `children` is present, `present` saying of each entry
/// whether its manifest is. Attestation manifests are not images: they neither count as the
/// one image present nor make an index whole without the images they attest.
pub fn present_part<'a>(
    children: &'a [Descriptor],
    present: impl Fn(&Descriptor) -> bool,
) -> Part<'a> {
    if children.iter().all(&present) {
        return Part::Whole;
    }
    let images: Vec<&Descriptor> = children
        .iter()
        .filter(|c| !c.is_attestation() && present(c))
        .collect();
    match images.as_slice() {
        [] => Part::Nothing,
        [one] => Part::One(one),
        _ => Part::Several(images),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children() -> Vec<Descriptor> {
        let entry = |n: u32, arch: &str, attestation: bool| {
            let annotations = if attestation {
                serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"})
            } else {
                serde_json::json!({})
            };
            serde_json::json!({
                "digest": format!("sha256:{n:064x}"),
                "size": 1,
                "platform": {"os": "linux", "architecture": arch},
                "annotations": annotations,
            })
        };
        serde_json::from_value(serde_json::json!([
            entry(1, "amd64", false),
            entry(2, "arm64", false),
            entry(3, "s390x", false),
            entry(4, "unknown", true),
        ]))
        .unwrap()
    }

    fn with(present: &[u32]) -> impl Fn(&Descriptor) -> bool {
        let digests: Vec<String> = present.iter().map(|n| format!("sha256:{n:064x}")).collect();
        move |d| digests.contains(&d.digest)
    }

    /// The digests' last hex digit of each entry of a part, to compare.
    fn shown(part: Part<'_>) -> String {
        let last = |d: &Descriptor| d.digest.chars().last().unwrap_or_default();
        match part {
            Part::Whole => "whole".into(),
            Part::One(d) => format!("one {}", last(d)),
            Part::Several(list) => {
                format!("several {}", list.into_iter().map(last).collect::<String>())
            }
            Part::Nothing => "nothing".into(),
        }
    }

    #[test]
    fn an_index_whose_manifests_are_all_present_is_pushed_whole() {
        assert_eq!(
            shown(present_part(&children(), with(&[1, 2, 3, 4]))),
            "whole"
        );
    }

    #[test]
    fn one_image_present_is_pushed_alone_its_attestation_aside() {
        let children = children();
        assert_eq!(shown(present_part(&children, with(&[2, 4]))), "one 2");
        assert_eq!(shown(present_part(&children, with(&[2]))), "one 2");
    }

    #[test]
    fn several_images_present_must_be_picked_from_and_none_is_nothing() {
        let children = children();
        assert_eq!(shown(present_part(&children, with(&[1, 3]))), "several 13");
        assert_eq!(shown(present_part(&children, with(&[4]))), "nothing");
    }
}
