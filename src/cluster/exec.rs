//! A kubeconfig user whose credentials come from an `exec` plugin (a cloud CLI, an SSO helper):
//! we run the plugin ourselves, once per run, and hand kube's client what it answered as if the
//! kubeconfig had held it. Left to kube, the plugin runs three times to build one client (for
//! the TLS identity, the auth layer and the client's expiry) and again before every request
//! whose token expires within the minute.
//!
//! The plugin runs as a docker credential helper does (`credentials::program`): in a process
//! group of its own, its answer read to a limit, the whole group killed at the cluster's budget;
//! never interactive (its standard input is empty, its standard error dropped), since the push
//! owns the terminal and a prompt could only hang it.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::AuthInfo;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::credentials::program::{self, Environment, Limits};

/// The most of a plugin's answer read: a token or a certificate and key take a few KiB.
const OUTPUT_LIMIT: usize = 1 << 20;

#[derive(Deserialize)]
struct ExecCredential {
    status: Option<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    token: Option<SecretString>,
    client_certificate_data: Option<String>,
    client_key_data: Option<SecretString>,
}

/// Whether kube would run the plugin of `user`: only when nothing before it in kube's order (an
/// auth provider, a user name and password, a token, a token file) gives credentials.
fn plugin_of(user: &AuthInfo) -> Option<&kube::config::ExecConfig> {
    let other = user.auth_provider.is_some()
        || (user.username.is_some() && user.password.is_some())
        || user.token.is_some()
        || user.token_file.is_some();
    if other { None } else { user.exec.as_ref() }
}

/// Runs `user`'s `exec` plugin, if kube would, within `time`, and puts its answer in `user` in
/// the plugin's place: a token, or a client certificate and key. `Err` says in a few words why
/// there is nothing to put (the plugin failed, overran `time`, answered nonsense); it holds
/// nothing the plugin wrote.
pub(super) async fn run_once(user: &mut AuthInfo, time: Duration) -> Result<(), String> {
    let Some(exec) = plugin_of(user) else {
        return Ok(());
    };
    let Some(command) = exec.command.clone() else {
        return Err("its exec plugin names no command".into());
    };
    let info = serde_json::json!({
        "apiVersion": exec.api_version,
        "kind": "ExecCredential",
        "spec": {
            "interactive": false,
            "cluster": exec.cluster.as_ref().filter(|_| exec.provide_cluster_info),
        },
    });
    let mut set: Vec<(String, String)> = exec
        .env
        .iter()
        .flatten()
        .filter_map(|pair| Some((pair.get("name")?.clone(), pair.get("value")?.clone())))
        .collect();
    set.push(("KUBERNETES_EXEC_INFO".into(), info.to_string()));
    let removed = exec.drop_env.clone().unwrap_or_default();
    let args: Vec<&str> = exec.args.iter().flatten().map(String::as_str).collect();
    let limits = Limits {
        output: OUTPUT_LIMIT,
        time,
    };
    let environment = Environment {
        set: &set,
        removed: &removed,
    };
    let (status, output) = program::run_in(&command, &args, &environment, b"", &limits).await?;
    if !status.success() {
        return Err(format!("its exec plugin {command} failed ({status})"));
    }
    let answer: ExecCredential = serde_json::from_slice(&output)
        .map_err(|_| format!("its exec plugin {command} did not answer with an ExecCredential"))?;
    let status = answer
        .status
        .ok_or_else(|| format!("its exec plugin {command} answered without a status"))?;
    user.exec = None;
    match (status.client_certificate_data, status.client_key_data) {
        (Some(certificate), Some(key)) => {
            user.client_certificate_data = Some(STANDARD.encode(certificate));
            user.client_key_data = Some(STANDARD.encode(key.expose_secret()).into());
            user.client_certificate = None;
            user.client_key = None;
        }
        _ => match status.token {
            Some(token) => user.token = Some(token),
            None => return Err(format!("its exec plugin {command} gave no credentials")),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_with(plugin: &str) -> AuthInfo {
        let yaml = format!(
            "exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: sh\n  args: ['-c', {plugin:?}]\n  env: [{{name: GREETING, value: hello}}]\n"
        );
        parse_user(&yaml)
    }

    /// The user of a kubeconfig holding only `yaml` under it.
    fn parse_user(yaml: &str) -> AuthInfo {
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n{}",
            yaml.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        let parsed = kube::config::Kubeconfig::from_yaml(&kubeconfig).expect("kubeconfig");
        parsed.auth_infos[0].auth_info.clone().expect("user")
    }

    #[tokio::test]
    async fn a_token_takes_the_plugins_place() {
        let mut user = user_with(
            r#"echo "{\"status\":{\"token\":\"$GREETING-token\"}}"; test -n "$KUBERNETES_EXEC_INFO""#,
        );
        run_once(&mut user, Duration::from_secs(5))
            .await
            .expect("ran");
        assert!(user.exec.is_none());
        assert_eq!(
            user.token.as_ref().map(|t| t.expose_secret().to_string()),
            Some("hello-token".to_string())
        );
    }

    #[tokio::test]
    async fn a_certificate_takes_the_plugins_place_base64d_as_a_kubeconfig_holds_it() {
        let mut user = user_with(
            r#"echo '{"status":{"clientCertificateData":"CERT","clientKeyData":"KEY","token":"t"}}'"#,
        );
        run_once(&mut user, Duration::from_secs(5))
            .await
            .expect("ran");
        assert_eq!(
            user.client_certificate_data.as_deref(),
            Some(STANDARD.encode("CERT").as_str())
        );
        assert!(user.token.is_none(), "a certificate wins, as in kube");
    }

    #[tokio::test]
    async fn a_failing_slow_or_silent_plugin_gives_nothing() {
        for (script, says) in [
            ("exit 3", "failed"),
            ("sleep 5", "did not answer within 0.2s"),
            ("echo nonsense", "did not answer with an ExecCredential"),
            (r#"echo '{"status":{}}'"#, "gave no credentials"),
        ] {
            let mut user = user_with(script);
            let why = run_once(&mut user, Duration::from_millis(200))
                .await
                .expect_err(script);
            assert!(why.contains(says), "{script}: {why}");
            assert!(user.token.is_none());
        }
    }

    #[tokio::test]
    async fn a_user_with_a_token_never_runs_the_plugin() {
        let mut user = user_with("exit 3");
        user.token = Some("given".to_string().into());
        run_once(&mut user, Duration::from_secs(5))
            .await
            .expect("not run");
        assert!(user.exec.is_some());
    }
}
