//! Wiremock registries: the opening every fake registry shares (anyone may in, `GET /v2/`
//! answers 200) and a `team/app` that holds no blob yet, for the tests to mount the rest on.

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A wiremock server whose version check (`GET /v2/`) answers 200: a registry that lets anyone
/// in.
pub async fn open_registry() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// An [`open_registry`] whose `team/app` holds no blob (each `HEAD` of one answers 404) and
/// that answers the start of an upload (`POST /v2/team/app/blobs/uploads/`) with `upload`.
pub async fn empty_team_app(upload: ResponseTemplate) -> MockServer {
    let server = open_registry().await;
    Mock::given(method("HEAD"))
        .and(path_regex("^/v2/team/app/blobs/"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/team/app/blobs/uploads/"))
        .respond_with(upload)
        .mount(&server)
        .await;
    server
}
