//! The model's own tests: each Gitea rule it claims, request by request, and `docker push`'s
//! order for a multi-platform image failing on it as it fails on Gitea (go-gitea/gitea #26839,
//! #31215, #31861, #31964, #37093), while idpbuilder's order goes through.

use std::time::Duration;

use serde_json::json;

use super::client::{Client, OCI_INDEX, OCI_MANIFEST, header, index, platform};
use crate::support::gitea_model::{GiteaModel, Options, sha256};

fn plain_model() -> GiteaModel {
    GiteaModel::start(Options {
        tls: false,
        write_window: Duration::from_millis(300),
        ..Options::default()
    })
}

#[tokio::test]
async fn the_bearer_flow_is_giteas() {
    let model = plain_model();
    let client = Client::login(&model).await;
    let http = reqwest::Client::new();
    let anonymous = http
        .get(format!("{}/v2/", model.base_url()))
        .send()
        .await
        .expect("GET /v2/");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        header(&anonymous, "www-authenticate").as_deref(),
        Some(
            format!(
                r#"Bearer realm="http://{}/v2/token",service="container_registry",scope="*""#,
                model.host()
            )
            .as_str()
        )
    );
    let post = http
        .post(format!("{}/v2/token", model.base_url()))
        .send()
        .await
        .expect("POST /v2/token");
    assert_eq!(
        post.status(),
        404,
        "POST /v2/token is AuthenticateNotImplemented"
    );
    let wrong = http
        .get(format!("{}/v2/token", model.base_url()))
        .basic_auth("giteaadmin", Some("wrong"))
        .send()
        .await
        .expect("token with a wrong password");
    assert_eq!(wrong.status(), 401);
    assert!(
        header(&wrong, "www-authenticate").is_none(),
        "verifyAuth refuses without a challenge"
    );
    assert_eq!(client.send("GET", "/v2/", &[], vec![]).await.status(), 200);
    let stale = reqwest::Client::new()
        .get(format!("{}/v2/", model.base_url()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("GET /v2/ with a bad token");
    assert_eq!(stale.status(), 401);
}

#[tokio::test]
async fn uploads_follow_giteas_range_rules() {
    let model = plain_model();
    let c = Client::login(&model).await;
    let started = c
        .send("POST", "giteaadmin/app/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!(started.status(), 202);
    assert!(header(&started, "range").is_none(), "no Range since 1.24.1");
    let location = header(&started, "location").expect("Location");
    let uuid = header(&started, "docker-upload-uuid").expect("Docker-Upload-UUID");
    assert_eq!(location, format!("/v2/giteaadmin/app/blobs/uploads/{uuid}"));

    let first = c.send("PATCH", &location, &[], b"01234".to_vec()).await;
    assert_eq!(
        (first.status().as_u16(), header(&first, "range")),
        (202, Some("0-4".into()))
    );
    let stream = c.send("PATCH", &location, &[], b"56789".to_vec()).await;
    assert_eq!(stream.status(), 400);
    assert!(
        stream
            .text()
            .await
            .unwrap_or_default()
            .contains("Stream uploads after first write")
    );
    let bytes_form = c
        .send(
            "PATCH",
            &location,
            &[("content-range", "bytes=5-9")],
            b"56789".to_vec(),
        )
        .await;
    assert_eq!(bytes_form.status(), 400);
    let gap = c
        .send(
            "PATCH",
            &location,
            &[("content-range", "3-7")],
            b"34567".to_vec(),
        )
        .await;
    assert_eq!(gap.status(), 416);
    let next = c
        .send(
            "PATCH",
            &location,
            &[("content-range", "5-9")],
            b"56789".to_vec(),
        )
        .await;
    assert_eq!(
        (next.status().as_u16(), header(&next, "range")),
        (202, Some("0-9".into()))
    );
    let status = c.send("GET", &location, &[], vec![]).await;
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range").as_deref(), Some("0-9"));
    assert_eq!(header(&status, "docker-upload-uuid"), Some(uuid));

    let whole = b"0123456789tail".to_vec();
    let wrong = c
        .send(
            "PUT",
            &format!("{location}?digest={}", sha256(b"x")),
            &[],
            vec![],
        )
        .await;
    assert_eq!(wrong.status(), 400, "DIGEST_INVALID; the session stays");
    let done = c
        .send(
            "PUT",
            &format!("{location}?digest={}", sha256(&whole)),
            &[],
            b"tail".to_vec(),
        )
        .await;
    assert_eq!(done.status(), 201, "the final PUT appends its body");
    let digest = sha256(&whole);
    let blob = |repo: &str| format!("{repo}/blobs/{digest}");
    assert_eq!(
        c.send("HEAD", &blob("giteaadmin/app"), &[], vec![])
            .await
            .status(),
        200
    );
    assert_eq!(
        c.send("HEAD", &blob("giteaadmin/other"), &[], vec![])
            .await
            .status(),
        404
    );
    assert_eq!(
        c.send("GET", &location, &[], vec![]).await.status(),
        404,
        "session ended"
    );

    let mounted = c
        .send(
            "POST",
            &format!("giteaadmin/other/blobs/uploads/?mount={digest}&from=giteaadmin/app"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(mounted.status(), 201);
    assert_eq!(
        c.send("HEAD", &blob("giteaadmin/other"), &[], vec![])
            .await
            .status(),
        200
    );
    let not_there = c
        .send(
            "POST",
            &format!("giteaadmin/third/blobs/uploads/?mount={digest}&from=giteaadmin/nowhere"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(
        not_there.status(),
        202,
        "an unknown source gives a normal session"
    );
}

#[tokio::test]
async fn manifests_are_checked_as_gitea_checks_them() {
    let model = plain_model();
    let c = Client::login(&model).await;
    let repo = "giteaadmin/app";
    let amd = platform(&c, repo, "amd64").await;
    let m = &amd.manifest;
    let put = |reference: &'static str, content_type: &'static str, body: Vec<u8>| {
        let c = &c;
        async move { c.put_manifest(repo, reference, content_type, &body).await }
    };
    let with_params = "application/vnd.oci.image.manifest.v1+json; charset=utf-8";
    assert_eq!(
        put("1.0", with_params, m.clone()).await,
        (400, "MANIFEST_INVALID".into())
    );
    assert_eq!(
        put("1.0", "application/json", m.clone()).await.0,
        201,
        "body mediaType used"
    );
    let artifact = "application/vnd.oci.artifact.manifest.v1+json";
    assert_eq!(
        put("art", artifact, m.clone()).await,
        (400, "MANIFEST_INVALID".into())
    );
    let v1 = json!({"schemaVersion": 1}).to_string().into_bytes();
    assert_eq!(
        put("old", OCI_MANIFEST, v1).await,
        (501, "UNSUPPORTED".into())
    );
    assert_eq!(put("bad", OCI_MANIFEST, b"not json".to_vec()).await.0, 500);
    let mut big = m.clone();
    big.extend(vec![b' '; 10 * 1024 * 1024]);
    assert_eq!(
        put("big", OCI_MANIFEST, big).await,
        (413, "MANIFEST_INVALID".into())
    );
    assert_eq!(
        put("Bad!", OCI_MANIFEST, m.clone()).await,
        (400, "MANIFEST_INVALID".into())
    );

    let text = String::from_utf8(m.clone()).expect("utf-8");
    let missing = text.replace(&amd.layer, &sha256(b"absent"));
    assert_eq!(
        put("x", OCI_MANIFEST, missing.into_bytes()).await,
        (404, "BLOB_UNKNOWN".into())
    );
    let resized = text.replace(r#""size":14}"#, r#""size":15}"#);
    assert_ne!(resized, text, "the layer's size is in the manifest");
    assert_eq!(
        put("x", OCI_MANIFEST, resized.into_bytes()).await,
        (400, "SIZE_INVALID".into())
    );

    assert_eq!(put("Latest", OCI_MANIFEST, m.clone()).await.0, 201);
    let by_tag = c
        .send("GET", &format!("{repo}/manifests/latest"), &[], vec![])
        .await;
    assert_eq!(by_tag.status(), 200, "Latest and latest are one tag");
    assert_eq!(
        header(&by_tag, "docker-content-digest"),
        Some(amd.digest.clone())
    );
    assert_eq!(
        header(&by_tag, "content-type").as_deref(),
        Some(OCI_MANIFEST)
    );
    let by_digest = c
        .send(
            "HEAD",
            &format!("{repo}/manifests/{}", amd.digest),
            &[],
            vec![],
        )
        .await;
    assert_eq!(by_digest.status(), 200);
    let tags = c
        .send("GET", &format!("{repo}/tags/list"), &[], vec![])
        .await;
    let tags: serde_json::Value = tags.json().await.expect("tag list");
    assert_eq!(tags, json!({"name": repo, "tags": ["1.0", "latest"]}));

    let arm = platform(&c, "giteaadmin/elsewhere", "arm64").await;
    let (status, _) = c
        .put_manifest(
            "giteaadmin/elsewhere",
            &arm.digest,
            OCI_MANIFEST,
            &arm.manifest,
        )
        .await;
    assert_eq!(status, 201);
    let foreign_child = index(&[&amd, &arm]);
    assert_eq!(
        put("multi", OCI_INDEX, foreign_child).await,
        (404, "MANIFEST_BLOB_UNKNOWN".into())
    );
    let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": amd.digest, "size": 1}]});
    assert_eq!(
        put("multi", OCI_INDEX, nested.to_string().into_bytes()).await,
        (400, "MANIFEST_INVALID".into())
    );
    let own_children = index(&[&amd]);
    assert_eq!(put("multi", OCI_INDEX, own_children).await.0, 201);
    assert_eq!(
        c.send("GET", "/v2/giteaadmin/app/referrers/x", &[], vec![])
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_manifest_put_to_a_tag_replaces_that_tags_version_and_its_files() {
    let model = plain_model();
    let c = Client::login(&model).await;
    let repo = "giteaadmin/app";
    let amd = platform(&c, repo, "amd64").await;
    let arm = platform(&c, repo, "arm64").await;
    assert_eq!(
        c.put_manifest(repo, "1.0", OCI_MANIFEST, &amd.manifest)
            .await
            .0,
        201
    );
    assert_eq!(
        c.put_manifest(repo, "1.0", OCI_MANIFEST, &arm.manifest)
            .await
            .0,
        201
    );
    let gone = c
        .send(
            "HEAD",
            &format!("{repo}/manifests/{}", amd.digest),
            &[],
            vec![],
        )
        .await;
    assert_eq!(
        gone.status(),
        404,
        "the first manifest went with its version"
    );
    let layer = c
        .send("HEAD", &format!("{repo}/blobs/{}", amd.layer), &[], vec![])
        .await;
    assert_eq!(layer.status(), 404, "so did the layers only it named");
}

/// `docker push` of a containerd-store multi-platform image: each child manifest to the TAG,
/// several at once, then the index to the tag. Gitea answers 500 to the overlapping child and
/// 404 `MANIFEST_BLOB_UNKNOWN` to the index; pushed one after the other, the second child
/// replaces the first and the index still gets 404. idpbuilder's order goes through.
#[tokio::test]
async fn docker_push_order_fails_on_the_model_as_on_gitea() {
    let model = plain_model();
    let c = Client::login(&model).await;
    let repo = "giteaadmin/multi";
    let amd = platform(&c, repo, "amd64").await;
    let arm = platform(&c, repo, "arm64").await;
    let (a, b) = tokio::join!(
        c.put_manifest(repo, "latest", OCI_MANIFEST, &amd.manifest),
        c.put_manifest(repo, "latest", OCI_MANIFEST, &arm.manifest),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [201, 500],
        "children to the tag at once: {a:?} {b:?}"
    );
    let both = index(&[&amd, &arm]);
    assert_eq!(
        c.put_manifest(repo, "latest", OCI_INDEX, &both).await,
        (404, "MANIFEST_BLOB_UNKNOWN".into())
    );

    let repo = "giteaadmin/one-by-one";
    let amd = platform(&c, repo, "amd64").await;
    let arm = platform(&c, repo, "arm64").await;
    assert_eq!(
        c.put_manifest(repo, "latest", OCI_MANIFEST, &amd.manifest)
            .await
            .0,
        201
    );
    assert_eq!(
        c.put_manifest(repo, "latest", OCI_MANIFEST, &arm.manifest)
            .await
            .0,
        201
    );
    assert_eq!(
        c.put_manifest(repo, "latest", OCI_INDEX, &index(&[&amd, &arm]))
            .await,
        (404, "MANIFEST_BLOB_UNKNOWN".into()),
        "one after the other: the second child replaced the first"
    );

    let repo = "giteaadmin/ours";
    let amd = platform(&c, repo, "amd64").await;
    let arm = platform(&c, repo, "arm64").await;
    for child in [&amd, &arm] {
        assert_eq!(
            c.put_manifest(repo, &child.digest, OCI_MANIFEST, &child.manifest)
                .await
                .0,
            201
        );
    }
    assert_eq!(
        c.put_manifest(repo, "latest", OCI_INDEX, &index(&[&amd, &arm]))
            .await
            .0,
        201
    );
    let state = model.state();
    assert_eq!(
        state.manifest(repo, "latest"),
        Some(sha256(&index(&[&amd, &arm])))
    );
    assert_eq!(state.tags(repo), ["latest"]);
}
