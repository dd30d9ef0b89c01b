//! `--platform os/arch[/variant]`: parsing, display, and matching against the platform of an
//! index entry or an image config.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::document::Descriptor;
use crate::error::{Error, Result};

/// A platform the user asked for. The architecture is normalised (`x86_64` is `amd64`,
/// `aarch64` is `arm64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(text: &str) -> Result<Platform> {
        let parts: Vec<String> = text
            .split('/')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            // clap puts "invalid value 'TEXT' for '--platform …':" in front of this.
            return Err(Error::input(
                "expected os/arch or os/arch/variant, for example linux/amd64 or linux/arm64/v8",
            ));
        }
        let architecture = normalise_architecture(&parts[1]);
        Ok(Platform {
            os: parts[0].clone(),
            architecture,
            variant: parts.get(2).cloned(),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(
            &self.os,
            &self.architecture,
            self.variant.as_deref(),
        ))
    }
}

impl Platform {
    /// Whether an image for `os`/`architecture`/`variant` is what the user asked for. Without a
    /// variant, the user accepts any; `arm64` without a variant is `arm64/v8`.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let architecture = normalise_architecture(architecture);
        if !self.os.eq_ignore_ascii_case(os) || self.architecture != architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(wanted) => {
                default_variant(&architecture, Some(wanted))
                    == default_variant(&architecture, variant)
            }
        }
    }
}

/// `os/arch[/variant]`, as listed in messages.
pub fn describe(os: &str, architecture: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{architecture}/{v}"),
        _ => format!("{os}/{architecture}"),
    }
}

/// The platform fields of an index entry or an image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlatformJson {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
}

impl PlatformJson {
    /// `os/arch[/variant]`, or `None` when os or architecture is not given.
    pub fn describe(&self) -> Option<String> {
        match (&self.os, &self.architecture) {
            (Some(os), Some(arch)) => Some(describe(os, arch, self.variant.as_deref())),
            _ => None,
        }
    }

    pub fn is(&self, wanted: &Platform) -> bool {
        match (&self.os, &self.architecture) {
            (Some(os), Some(arch)) => wanted.matches(os, arch, self.variant.as_deref()),
            _ => false,
        }
    }
}

/// Checks that an image config (its JSON `bytes`) is for the `wanted` platform. A config that
/// names no platform (an artifact) passes.
pub fn check_config(wanted: &Platform, config: &[u8], image: &str) -> Result<()> {
    let found: PlatformJson = serde_json::from_slice(config).unwrap_or_default();
    match found.describe() {
        Some(name) if !found.is(wanted) => Err(Error::input(format!(
            "{image} is for platform {name}, not {wanted}"
        ))
        .with_hint(format!("leave out --platform to push it anyway as {name}"))),
        _ => Ok(()),
    }
}

/// The entry of an index for the platform the user asked for; `source` names the image in
/// messages.
pub fn pick_platform<'e>(
    entries: &'e [Descriptor],
    platform: &Platform,
    source: &str,
) -> Result<&'e Descriptor> {
    // Attestation manifests say `unknown/unknown` but are not images: never a match.
    let found: Vec<&Descriptor> = entries
        .iter()
        .filter(|d| !d.is_attestation() && d.platform.as_ref().is_some_and(|p| p.is(platform)))
        .collect();
    let digests: HashSet<&str> = found.iter().map(|d| d.digest.as_str()).collect();
    let list = |entries: &mut dyn Iterator<Item = &Descriptor>| {
        let mut names: Vec<String> = entries
            .filter_map(|d| d.platform.as_ref().and_then(PlatformJson::describe))
            .filter(|p| p != "unknown/unknown")
            .collect();
        names.dedup();
        names.join(", ")
    };
    match digests.len() {
        1 => Ok(found[0]),
        0 => Err(Error::input(format!(
            "{source} has no image for platform {platform} (it has: {})",
            list(&mut entries.iter())
        ))
        .with_hint("pick one of those with --platform, or leave --platform out to push them all")),
        _ => Err(Error::input(format!(
            "several images in {source} match platform {platform}: {}",
            list(&mut found.iter().copied())
        ))
        .with_hint("give the variant too, as in --platform linux/arm/v7")),
    }
}

/// Architecture aliases to their Go/OCI names.
fn normalise_architecture(architecture: &str) -> String {
    match architecture.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        "i386" | "i686" => "386".to_string(),
        other => other.to_string(),
    }
}

/// The variant in lower case, `arm64` defaulting to `v8` as containerd does.
fn default_variant(architecture: &str, variant: Option<&str>) -> Option<String> {
    match variant.filter(|v| !v.is_empty()) {
        Some(v) => Some(v.to_ascii_lowercase()),
        None if architecture == "arm64" => Some("v8".to_string()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        text.parse().unwrap()
    }

    #[test]
    fn parses_os_arch_and_optional_variant() {
        assert_eq!(
            p("linux/amd64"),
            Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None
            }
        );
        assert_eq!(p("linux/arm/v7").variant.as_deref(), Some("v7"));
        assert_eq!(p("Linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
    }

    #[test]
    fn anything_else_is_an_error_naming_the_form_with_an_example() {
        // Only clap parses it, and clap's line names the flag and the value already.
        for bad in ["linux", "linux/", "/amd64", "linux/arm/v7/x", ""] {
            let err = bad.parse::<Platform>().unwrap_err();
            assert!(
                err.message().starts_with("expected os/arch"),
                "{}",
                err.message()
            );
            assert!(err.message().contains("linux/amd64"), "{}", err.message());
            assert_eq!(err.kind(), crate::error::Kind::Input);
        }
    }

    #[test]
    fn a_missing_variant_matches_any_variant() {
        assert!(p("linux/arm64").matches("linux", "arm64", Some("v8")));
        assert!(p("linux/arm64").matches("linux", "arm64", Some("v9")));
        assert!(p("linux/arm").matches("linux", "arm", Some("v6")));
        assert!(p("linux/amd64").matches("linux", "amd64", None));
        assert!(!p("linux/amd64").matches("linux", "arm64", None));
        assert!(!p("linux/amd64").matches("windows", "amd64", None));
    }

    #[test]
    fn a_given_variant_must_match_with_arm64_defaulting_to_v8() {
        assert!(p("linux/arm64/v8").matches("linux", "arm64", None));
        assert!(p("linux/arm/v7").matches("linux", "arm", Some("v7")));
        assert!(!p("linux/arm/v7").matches("linux", "arm", Some("v6")));
        assert!(!p("linux/arm/v7").matches("linux", "arm", None));
        assert!(p("linux/aarch64").matches("linux", "arm64", Some("v8")));
    }

    #[test]
    fn a_config_for_another_platform_is_refused() {
        let config = br#"{"os":"linux","architecture":"arm64","variant":"v8"}"#;
        assert!(check_config(&p("linux/arm64"), config, "img").is_ok());
        let err = check_config(&p("linux/amd64"), config, "app.tar").unwrap_err();
        assert_eq!(
            err.message(),
            "app.tar is for platform linux/arm64/v8, not linux/amd64"
        );
        assert!(check_config(&p("linux/amd64"), b"{}", "artifact").is_ok());
    }

    /// A BuildKit index: two images, each with an attestation manifest for `unknown/unknown`.
    fn buildkit_entries() -> Vec<Descriptor> {
        let entry = |n: u8, platform: &str, attests: bool| {
            let (os, arch) = platform.split_once('/').unwrap();
            let annotations = if attests {
                serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"})
            } else {
                serde_json::json!({})
            };
            serde_json::json!({
                "digest": format!("sha256:{}", format!("{n:x}").repeat(64)),
                "size": 1,
                "platform": {"os": os, "architecture": arch},
                "annotations": annotations,
            })
        };
        let entries = serde_json::json!([
            entry(1, "linux/amd64", false),
            entry(2, "linux/arm64", false),
            entry(3, "unknown/unknown", true),
            entry(4, "unknown/unknown", true),
        ]);
        serde_json::from_value(entries).unwrap()
    }

    #[test]
    fn attestation_manifests_are_never_the_platform_picked() {
        let entries = buildkit_entries();
        let err = pick_platform(&entries, &p("unknown/unknown"), "app").unwrap_err();
        assert_eq!(
            err.message(),
            "app has no image for platform unknown/unknown (it has: linux/amd64, linux/arm64)"
        );
        let picked = pick_platform(&entries, &p("linux/arm64"), "app").unwrap();
        assert!(picked.digest.ends_with("22"));
    }
}
