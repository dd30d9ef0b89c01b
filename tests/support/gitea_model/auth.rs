//! Who a request is, as Gitea's container routes decide it: `verifyAuth` with `auth.Basic` and
//! the container Bearer token (`routers/api/packages/api.go`, `container/auth.go`), the
//! challenge of `apiUnauthorizedError`, and `Authenticate` on `GET /v2/token`.

use base64::Engine as _;

use super::server::{Req, Resp};
use super::{OWNER, PASSWORD, Shared};

/// The user a request acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doer {
    /// `giteaadmin`, a site admin: may write to any owner.
    Admin,
    /// Gitea's ghost user, given to anonymous token requests: may read public packages only.
    Ghost,
}

/// `verifyAuth`: `Ok(None)` without credentials, `Ok(Some)` with working ones; `Err` (401 with
/// "authGroup.Verify", no challenge) for a wrong password, an unknown token, or one that stopped
/// working.
pub fn verify(shared: &Shared, req: &Req) -> Result<Option<Doer>, Resp> {
    let Some(value) = req.header("authorization") else {
        return Ok(None);
    };
    let refused = || Resp::plain(401, "authGroup.Verify\n");
    let Some((scheme, credentials)) = value.split_once(' ') else {
        return Err(refused());
    };
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        return match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, pass)) if user.eq_ignore_ascii_case(OWNER) && pass == PASSWORD => {
                Ok(Some(Doer::Admin))
            }
            _ => Err(refused()),
        };
    }
    // Any other scheme reaches the container method, which parses the rest as its token.
    let mut state = shared.lock();
    let Some(index) = state.tokens.iter().position(|(t, _)| t == credentials) else {
        return Err(refused());
    };
    let options = &shared.options;
    let stopped = match options.expire_first_token_after {
        Some(limit) => {
            (index == 0 && state.tokens[0].1 >= limit)
                || (index > 0 && options.refuse_renewed_tokens)
        }
        None => false,
    };
    if stopped {
        state.refusals += 1;
        return Err(refused());
    }
    state.tokens[index].1 += 1;
    Ok(Some(if credentials.contains("ghost") {
        Doer::Ghost
    } else {
        Doer::Admin
    }))
}

/// `apiUnauthorizedError`: 401 `UNAUTHORIZED` with the Bearer challenge; the realm is the
/// request's own scheme and host (`httplib.GuessCurrentHostURL`) plus `/v2/token`.
pub fn challenge(req: &Req) -> Resp {
    let realm = format!("{}://{}/v2/token", req.scheme, req.host);
    Resp::error(401, "UNAUTHORIZED", "").header(
        "WWW-Authenticate",
        &format!(r#"Bearer realm="{realm}",service="container_registry",scope="*""#),
    )
}

/// `Authenticate`: a token for the doer, the ghost user when anonymous.
pub fn token(shared: &Shared, doer: Option<Doer>) -> Resp {
    let mut state = shared.lock();
    state.token_gets += 1;
    let who = match doer {
        None | Some(Doer::Ghost) => "ghost",
        Some(Doer::Admin) => "admin",
    };
    let token = format!("gitea-model-{who}-token-{}", state.tokens.len() + 1);
    state.tokens.push((token.clone(), 0));
    Resp::new(200)
        .header("Content-Type", "application/json;charset=utf-8")
        .body(
            serde_json::json!({ "token": token })
                .to_string()
                .into_bytes(),
        )
}

/// `reqPackageAccess(perm.AccessModeWrite)` for a user who may not write.
pub fn no_write_access() -> Resp {
    Resp::plain(
        401,
        "user should have specific permission or be a site admin\n",
    )
    .header("WWW-Authenticate", r#"Basic realm="Gitea Package API""#)
}
