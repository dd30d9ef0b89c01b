//! Finding the cluster as kubectl does: `--kubeconfig`, else `$KUBECONFIG` (paths joined by `:`,
//! merged, missing ones skipped), else `~/.kube/config`; `--context`, else the current context.
//!
//! What the user named explicitly (`--kubeconfig`, `--context`) must exist and parse, or the push
//! stops with an `error:`. A kubeconfig merely found in the usual places that is missing, broken
//! or without a usable context is passed over with a debug line.

use std::ffi::OsString;
use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};

/// Where to look: the flags and the environment they default to.
#[derive(Debug, Clone, Default)]
pub struct KubeconfigChoice {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `$KUBECONFIG`.
    pub env_kubeconfig: Option<OsString>,
    /// `$HOME`, for `~/.kube/config`.
    pub home: Option<PathBuf>,
}

impl KubeconfigChoice {
    /// The flags plus `$KUBECONFIG` and `$HOME` of this process.
    pub fn from_process(kubeconfig: Option<PathBuf>, context: Option<String>) -> KubeconfigChoice {
        KubeconfigChoice {
            kubeconfig,
            context,
            env_kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// Whether the user named a kubeconfig or context, so a problem with it is an error.
    pub fn explicit(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some()
    }
}

/// The kubeconfig files to read, in kubectl's order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Files {
    Flag(PathBuf),
    Env(Vec<PathBuf>),
    Home(PathBuf),
    Nothing,
}

fn files(request: &KubeconfigChoice) -> Files {
    if let Some(path) = &request.kubeconfig {
        return Files::Flag(path.clone());
    }
    if let Some(value) = request.env_kubeconfig.as_ref().filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return Files::Env(paths);
        }
    }
    match &request.home {
        Some(home) => Files::Home(home.join(".kube").join("config")),
        None => Files::Nothing,
    }
}

/// A client configuration for the chosen context, and words for messages.
pub struct Loaded {
    pub config: kube::Config,
    pub context: String,
    pub described: String,
}

/// Loads the kubeconfig and the chosen context. `Ok(None)`: there is none to use (debug line
/// given); `Err`: what the user named explicitly is missing or broken.
pub async fn load(request: &KubeconfigChoice) -> Result<Option<Loaded>> {
    let Some((kubeconfig, described)) = read(request)? else {
        if let Some(context) = &request.context {
            return Err(Error::input(format!(
                "--context {context}: no kubeconfig found (looked at $KUBECONFIG and ~/.kube/config)"
            ))
            .with_hint("pass --kubeconfig PATH, or drop --context"));
        }
        return Ok(None);
    };
    let Some(context) = choose_context(request, &kubeconfig, &described)? else {
        return Ok(None);
    };
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..KubeConfigOptions::default()
    };
    match kube::Config::from_custom_kubeconfig(kubeconfig, &options).await {
        Ok(config) => Ok(Some(Loaded {
            config,
            context,
            described,
        })),
        Err(e) if request.explicit() => Err(Error::input(format!(
            "cannot use context {context:?} of {described}"
        ))
        .with_cause(e)
        .with_hint("check it with: kubectl config view --minify")),
        Err(e) => {
            tracing::debug!("cluster: passing over context {context:?} of {described}: {e}");
            Ok(None)
        }
    }
}

/// Reads and merges the kubeconfig files, with a description such as `~/.kube/config`.
fn read(request: &KubeconfigChoice) -> Result<Option<(Kubeconfig, String)>> {
    match files(request) {
        Files::Flag(path) => {
            let described = format!("--kubeconfig {}", path.display());
            let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| {
                Error::input(format!("cannot read {described}"))
                    .with_cause(e)
                    .with_hint("pass the path of a valid kubeconfig file, e.g. ~/.kube/config")
            })?;
            Ok(Some((kubeconfig, described)))
        }
        Files::Env(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in &paths {
                if !path.exists() {
                    tracing::debug!(
                        "cluster: $KUBECONFIG names {}, which does not exist",
                        path.display()
                    );
                    continue;
                }
                let next = match Kubeconfig::read_from(path) {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::debug!("cluster: passing over {}: {e}", path.display());
                        continue;
                    }
                };
                merged = match merged {
                    None => Some(next),
                    Some(first) => match first.clone().merge(next) {
                        Ok(both) => Some(both),
                        Err(e) => {
                            tracing::debug!("cluster: cannot merge {}: {e}", path.display());
                            Some(first)
                        }
                    },
                };
            }
            if merged.is_none() {
                tracing::debug!(
                    "cluster: no readable kubeconfig in $KUBECONFIG; not reading the cluster"
                );
            }
            Ok(merged.map(|k| (k, "$KUBECONFIG".to_string())))
        }
        Files::Home(path) => {
            if !path.exists() {
                tracing::debug!(
                    "cluster: no kubeconfig at {}; not reading the cluster",
                    path.display()
                );
                return Ok(None);
            }
            match Kubeconfig::read_from(&path) {
                Ok(kubeconfig) => Ok(Some((kubeconfig, path.display().to_string()))),
                Err(e) => {
                    tracing::debug!("cluster: passing over {}: {e}", path.display());
                    Ok(None)
                }
            }
        }
        Files::Nothing => {
            tracing::debug!(
                "cluster: neither $KUBECONFIG nor $HOME is set; not reading the cluster"
            );
            Ok(None)
        }
    }
}

/// `--context`, which must exist, else the current context, which may be missing.
fn choose_context(
    request: &KubeconfigChoice,
    kubeconfig: &Kubeconfig,
    described: &str,
) -> Result<Option<String>> {
    let known = |name: &str| kubeconfig.contexts.iter().any(|c| c.name == name);
    if let Some(context) = &request.context {
        if known(context) {
            return Ok(Some(context.clone()));
        }
        let names: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let hint = if names.is_empty() {
            "the kubeconfig has no contexts; pass --kubeconfig with the cluster's file".to_string()
        } else {
            format!(
                "pass one of: {} (kubectl config get-contexts)",
                names.join(", ")
            )
        };
        return Err(
            Error::input(format!("context {context:?} is not in {described}")).with_hint(hint),
        );
    }
    match kubeconfig
        .current_context
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        Some(current) if known(current) => Ok(Some(current.to_string())),
        Some(current) => {
            tracing::debug!(
                "cluster: current context {current:?} of {described} does not exist; not reading the cluster"
            );
            Ok(None)
        }
        None => {
            tracing::debug!("cluster: {described} has no current context; not reading the cluster");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn request() -> KubeconfigChoice {
        KubeconfigChoice {
            home: Some("/home/u".into()),
            ..KubeconfigChoice::default()
        }
    }

    #[test]
    fn flag_beats_environment_beats_home() {
        let mut r = request();
        assert_eq!(files(&r), Files::Home("/home/u/.kube/config".into()));
        r.env_kubeconfig = Some("/a:/b::".into());
        assert_eq!(files(&r), Files::Env(vec!["/a".into(), "/b".into()]));
        r.kubeconfig = Some("/flag".into());
        assert_eq!(files(&r), Files::Flag("/flag".into()));
    }

    #[test]
    fn empty_kubeconfig_variable_means_home() {
        let mut r = request();
        r.env_kubeconfig = Some("".into());
        assert_eq!(files(&r), Files::Home("/home/u/.kube/config".into()));
        r.env_kubeconfig = Some(":".into());
        assert_eq!(files(&r), Files::Home("/home/u/.kube/config".into()));
        r.home = None;
        assert_eq!(files(&r), Files::Nothing);
    }

    fn write(dir: &Path, name: &str, current: Option<&str>, contexts: &[&str]) -> PathBuf {
        let mut yaml = String::from("apiVersion: v1\nkind: Config\n");
        if let Some(current) = current {
            yaml.push_str(&format!("current-context: {current}\n"));
        }
        yaml.push_str("clusters:\n");
        for c in contexts {
            yaml.push_str(&format!(
                "- name: {c}\n  cluster:\n    server: https://{name}.{c}.invalid:6443\n"
            ));
        }
        yaml.push_str("users:\n");
        for c in contexts {
            yaml.push_str(&format!("- name: {c}\n  user:\n    token: t-{name}\n"));
        }
        yaml.push_str("contexts:\n");
        for c in contexts {
            yaml.push_str(&format!(
                "- name: {c}\n  context:\n    cluster: {c}\n    user: {c}\n"
            ));
        }
        let path = dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    #[tokio::test]
    async fn kubeconfig_variable_merges_files_first_wins_missing_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), "first", Some("kind"), &["kind"]);
        let second = write(dir.path(), "second", Some("other"), &["kind", "other"]);
        let joined = std::env::join_paths([dir.path().join("missing"), first, second]).unwrap();
        let r = KubeconfigChoice {
            env_kubeconfig: Some(joined),
            ..KubeconfigChoice::default()
        };
        let loaded = load(&r).await.unwrap().unwrap();
        assert_eq!(loaded.context, "kind");
        assert_eq!(loaded.config.cluster_url.host(), Some("first.kind.invalid"));
        let other = KubeconfigChoice {
            context: Some("other".into()),
            ..r
        };
        let loaded = load(&other).await.unwrap().unwrap();
        assert_eq!(
            loaded.config.cluster_url.host(),
            Some("second.other.invalid")
        );
    }

    #[tokio::test]
    async fn explicit_problems_are_errors_implicit_ones_pass_over() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good", Some("kind"), &["kind"]);
        let broken = dir.path().join("broken");
        std::fs::write(&broken, "clusters: [this is: not: yaml").unwrap();

        let flag = |p: &Path| KubeconfigChoice {
            kubeconfig: Some(p.to_path_buf()),
            ..KubeconfigChoice::default()
        };
        let err = load(&flag(&broken)).await.err().unwrap();
        assert_eq!(err.kind(), crate::error::Kind::Input);
        assert!(err.message().contains("--kubeconfig"), "{}", err.message());
        assert!(load(&flag(&dir.path().join("nope"))).await.is_err());

        let nope = KubeconfigChoice {
            context: Some("nope".into()),
            ..flag(&good)
        };
        let err = load(&nope).await.err().unwrap();
        assert!(err.message().contains("\"nope\""), "{}", err.message());
        assert!(err.hint().unwrap_or_default().contains("kind"));

        let env = KubeconfigChoice {
            env_kubeconfig: Some(broken.clone().into_os_string()),
            ..KubeconfigChoice::default()
        };
        assert!(load(&env).await.unwrap().is_none());
        let home = KubeconfigChoice {
            home: Some(dir.path().join("no-home")),
            ..KubeconfigChoice::default()
        };
        assert!(load(&home).await.unwrap().is_none());
        let context_without_kubeconfig = KubeconfigChoice {
            context: Some("kind".into()),
            ..home
        };
        assert!(load(&context_without_kubeconfig).await.is_err());
    }

    #[tokio::test]
    async fn missing_current_context_passes_over() {
        let dir = tempfile::tempdir().unwrap();
        let none = write(dir.path(), "none", None, &["kind"]);
        let dangling = write(dir.path(), "dangling", Some("gone"), &["kind"]);
        for path in [none, dangling] {
            let r = KubeconfigChoice {
                env_kubeconfig: Some(path.into_os_string()),
                ..KubeconfigChoice::default()
            };
            assert!(load(&r).await.unwrap().is_none());
        }
    }
}
