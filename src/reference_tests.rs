//! Unit tests of `reference.rs`: every DESTINATION form, and the errors for bad ones.

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

// The forms of issue 11: schemes, registry-only destinations, none at all.

fn arg(text: &str) -> DestinationArg {
    DestinationArg::parse(Some(text)).unwrap()
}

fn registry_only(host: &str, plain_http: bool) -> DestinationArg {
    DestinationArg::RegistryOnly {
        host: host.into(),
        plain_http,
    }
}

fn tag(tag: &str) -> Target {
    Target::Tag(tag.into())
}

#[test]
fn https_and_oci_schemes_are_dropped() {
    // This answered `port "" is not a number` before.
    let d = parse("https://gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0");
    assert_eq!(d.host, DEFAULT_HOST);
    assert_eq!(d.repository, "giteaadmin/app");
    assert_eq!(d.target, tag("1.0"));
    assert!(!d.plain_http);
    assert_eq!(
        parse("oci://localhost:5000/team/app"),
        parse("localhost:5000/team/app")
    );
    assert_eq!(
        parse("HTTPS://registry.example.com/app"),
        parse("registry.example.com/app")
    );
}

#[test]
fn http_scheme_means_plain_http() {
    let d = parse("http://127.0.0.1:5000/team/app:dev");
    assert!(d.plain_http);
    assert_eq!(d.host, "127.0.0.1:5000");
    assert_eq!(d.repository, "team/app");
    assert!(!parse("127.0.0.1:5000/team/app:dev").plain_http);
    assert!(arg("http://127.0.0.1:5000").plain_http());
}

#[test]
fn after_a_scheme_the_first_part_is_the_host() {
    let d = parse("https://myregistry/team/app");
    assert_eq!(d.host, "myregistry");
    assert_eq!(d.repository, "team/app");
    // Without a scheme the same host-less first part is an owner.
    assert_eq!(parse("myregistry/team/app").host, DEFAULT_HOST);
}

#[test]
fn destinations_print_back_to_themselves_with_their_scheme() {
    for text in [
        "http://127.0.0.1:5000/team/app:1.0",
        "https://myregistry/team/app",
        "gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0",
    ] {
        let d = parse(text);
        assert_eq!(d.to_string(), text);
        assert_eq!(parse(&d.to_string()), d);
    }
    assert_eq!(
        parse("https://localhost/app").to_string(),
        "localhost/app",
        "https:// is printed only where it is needed"
    );
}

#[test]
fn unknown_schemes_are_input_errors_naming_the_scheme() {
    for text in ["docker://giteaadmin/app:1.0", "ftp://host.com/app"] {
        let err = DestinationArg::parse(Some(text)).unwrap_err();
        assert_eq!(err.kind(), crate::error::Kind::Input, "{text}");
        assert!(
            err.message().contains("is not a destination scheme"),
            "{err:?}"
        );
        assert!(
            err.hint().is_some_and(|h| h.starts_with("drop ")),
            "{err:?}"
        );
    }
}

#[test]
fn a_host_alone_is_registry_only() {
    assert_eq!(
        arg("gitea.cnoe.localtest.me:8443"),
        registry_only(DEFAULT_HOST, false)
    );
    assert_eq!(
        arg("gitea.cnoe.localtest.me:8443/"),
        registry_only(DEFAULT_HOST, false)
    );
    assert_eq!(
        arg("registry.example.com"),
        registry_only("registry.example.com", false)
    );
    assert_eq!(arg("localhost"), registry_only("localhost", false));
    assert_eq!(
        arg("localhost:5000/"),
        registry_only("localhost:5000", false)
    );
    assert_eq!(
        arg("127.0.0.1:5000"),
        registry_only("127.0.0.1:5000", false)
    );
    assert_eq!(arg("[::1]:5000"), registry_only("[::1]:5000", false));
    assert_eq!(
        arg("https://myregistry"),
        registry_only("myregistry", false)
    );
    assert_eq!(
        arg("http://localhost:5000/"),
        registry_only("localhost:5000", true)
    );
}

#[test]
fn no_destination_is_the_default_host_registry_only() {
    assert_eq!(
        DestinationArg::parse(None).unwrap(),
        registry_only(DEFAULT_HOST, false)
    );
    assert_eq!(DestinationArg::parse(None).unwrap().host(), DEFAULT_HOST);
}

#[test]
fn a_path_a_digest_or_a_name_without_a_host_is_not_registry_only() {
    let full = |text: &str| matches!(arg(text), DestinationArg::Full(_));
    assert!(full("registry.example.com/app"));
    assert!(full("localhost:5000/team/app:1.0"));
    assert!(full("giteaadmin/app"));
    assert!(
        full("app"),
        "a one-part repository at the default host, as before"
    );
    assert_eq!(arg("giteaadmin/app:1.0").host(), DEFAULT_HOST);
}

#[test]
fn registry_only_text_is_refused_where_a_full_destination_is_needed() {
    for text in ["registry.example.com", "host.com/", "localhost:5000"] {
        let err = Destination::parse(text).unwrap_err();
        assert!(
            err.message().contains("but no repository"),
            "{text}: {err:?}"
        );
        assert!(
            err.hint().is_some_and(|h| h.contains("/OWNER/NAME")),
            "{err:?}"
        );
    }
}

#[test]
fn a_name_and_tag_without_owner_asks_for_the_owner() {
    let err = DestinationArg::parse(Some("app:1.0")).unwrap_err();
    assert_eq!(err.kind(), crate::error::Kind::Input);
    assert_eq!(
        err.message(),
        "invalid destination \"app:1.0\": a repository needs an owner, and as a registry HOST:PORT, \"1.0\" is not a port"
    );
    assert_eq!(
        err.hint(),
        Some("write OWNER/app:1.0, e.g. giteaadmin/app:1.0")
    );
    // A host whose port is bad gets the usual hint.
    let err = DestinationArg::parse(Some("registry.example.com:abc")).unwrap_err();
    assert!(err.message().contains("port \"abc\""), "{err:?}");
    assert_eq!(err.hint(), Some(FORMS_HINT));
}

#[test]
fn malformed_registry_only_destinations_are_input_errors() {
    for bad in [
        "https://",
        "http:///",
        "host.com:0",
        "ho st.com",
        "[::1",
        "1.2.3.999",
    ] {
        let err = DestinationArg::parse(Some(bad)).unwrap_err();
        assert_eq!(err.kind(), crate::error::Kind::Input, "{bad}");
        assert!(err.hint().is_some(), "{bad}");
    }
}

#[test]
fn registry_only_is_completed_from_the_user_and_the_source_name() {
    let complete = |user: &str, source: &str| {
        DestinationArg::parse(None)
            .unwrap()
            .complete(Some(user), Some(source))
            .unwrap()
    };
    let d = complete("giteaAdmin", "app:1.0");
    assert_eq!(d.host, DEFAULT_HOST);
    assert_eq!(d.repository, "giteaadmin/app", "the owner is lower-cased");
    assert_eq!(d.target, tag("1.0"));
    assert_eq!(
        d.to_string(),
        "gitea.cnoe.localtest.me:8443/giteaadmin/app:1.0"
    );

    let d = complete("giteaadmin", "docker.io/library/ubuntu:24.04");
    assert_eq!(
        (d.repository.as_str(), d.target),
        ("giteaadmin/ubuntu", tag("24.04"))
    );
    let d = complete("giteaadmin", "docker://library/ubuntu:24.04");
    assert_eq!(
        (d.repository.as_str(), d.target),
        ("giteaadmin/ubuntu", tag("24.04"))
    );
    let d = complete("giteaadmin", "foo/app:2");
    assert_eq!(
        (d.repository.as_str(), d.target),
        ("giteaadmin/app", tag("2"))
    );
    let d = complete("giteaadmin", "localhost:5000/team/app");
    assert_eq!(
        (d.repository.as_str(), d.target),
        ("giteaadmin/app", Target::Default)
    );
    let digest = format!("sha256:{}", "a".repeat(64));
    let d = complete("giteaadmin", &format!("ubuntu@{digest}"));
    assert_eq!(
        (d.repository.as_str(), d.target),
        ("giteaadmin/ubuntu", Target::Default)
    );
}

#[test]
fn completion_keeps_the_host_and_plain_http() {
    let d = arg("http://127.0.0.1:5000/")
        .complete(Some("me"), Some("app:1.0"))
        .unwrap();
    assert_eq!(d.host, "127.0.0.1:5000");
    assert!(d.plain_http);
    assert_eq!(d.to_string(), "http://127.0.0.1:5000/me/app:1.0");
}

#[test]
fn a_full_destination_is_complete_already() {
    let d = arg("giteaadmin/app:1.0").complete(None, None).unwrap();
    assert_eq!(d, parse("giteaadmin/app:1.0"));
}

#[test]
fn registry_only_without_user_or_source_name_shows_the_full_form() {
    let no_user = DestinationArg::parse(Some("127.0.0.1:5000"))
        .unwrap()
        .complete(None, Some("app:1.0"))
        .unwrap_err();
    assert_eq!(no_user.kind(), crate::error::Kind::Input);
    assert!(no_user.message().contains("no user name"), "{no_user:?}");
    assert!(
        no_user
            .hint()
            .is_some_and(|h| h.contains("idpbuilder push IMAGE 127.0.0.1:5000/OWNER/NAME:TAG")),
        "{no_user:?}"
    );
    let blank_user = DestinationArg::parse(None)
        .unwrap()
        .complete(Some(" "), Some("app:1.0"))
        .unwrap_err();
    assert!(
        blank_user.message().contains("no user name"),
        "{blank_user:?}"
    );

    for source in [None, Some("")] {
        let no_name = DestinationArg::parse(None)
            .unwrap()
            .complete(Some("giteaadmin"), source)
            .unwrap_err();
        assert_eq!(no_name.kind(), crate::error::Kind::Input);
        assert!(no_name.message().contains("no single name"), "{no_name:?}");
        assert_eq!(
            no_name.hint(),
            Some(
                "name it in full: idpbuilder push IMAGE gitea.cnoe.localtest.me:8443/OWNER/NAME:TAG"
            )
        );
    }
}

#[test]
fn names_that_cannot_make_a_repository_are_input_errors() {
    let complete = |user: &str, source: &str| {
        DestinationArg::parse(Some("localhost:5000"))
            .unwrap()
            .complete(Some(user), Some(source))
    };
    for (user, source) in [
        ("me@example.com", "app:1.0"),
        ("me", "App:1.0"),
        ("me", "app:-x"),
        ("me", "app:"),
        ("me", "team/"),
        ("me", &"a".repeat(300)),
    ] {
        let err = complete(user, source).unwrap_err();
        assert_eq!(err.kind(), crate::error::Kind::Input, "{user} {source}");
        assert!(
            err.hint().is_some_and(|h| h.contains("/OWNER/NAME:TAG")),
            "{err:?}"
        );
    }
}

/// The destination fuzz target's checks on stable Rust, over texts built from the pieces the
/// forms are made of: an accepted destination makes a URL and prints back to itself, a refused
/// one is an input error with a hint; completing a registry-only one does the same.
#[test]
fn pieces_of_every_form_parse_consistently() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let pieces = [
        "http://",
        "https://",
        "oci://",
        "HTTP://",
        "x://",
        "a",
        "b1",
        ".",
        ":",
        "/",
        "@",
        "5000",
        "localhost",
        "[::1]",
        &digest,
        "-",
        "_",
        "A",
        "",
    ];
    // A fixed linear congruential sequence: the same texts every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    };
    let check = |text: &str, result: Result<Destination>| match result {
        Ok(d) => {
            let url = format!("https://{}/v2/{}/", d.host, d.repository);
            assert!(url::Url::parse(&url).is_ok(), "{text:?} gives {url:?}");
            let printed = d.to_string();
            assert_eq!(
                Destination::parse(&printed).ok(),
                Some(d),
                "{text:?} -> {printed:?}"
            );
        }
        Err(e) => {
            assert_eq!(e.kind(), crate::error::Kind::Input, "{text:?}: {e:?}");
            assert!(e.hint().is_some(), "{text:?}: {e:?}");
        }
    };
    for _ in 0..20_000 {
        let text: String = (0..1 + next(7))
            .map(|_| pieces[next(pieces.len())])
            .collect();
        check(&text, Destination::parse(&text));
        let user = ["giteaadmin", "Me", "", "a b"][next(4)];
        let source = ["app:1.0", "docker.io/library/ubuntu:24.04", "", "x@", &text][next(5)];
        if let Ok(arg) = DestinationArg::parse(Some(&text)) {
            check(&text, arg.complete(Some(user), Some(source)));
        }
    }
}

#[test]
fn a_destination_ending_in_a_slash_after_the_owner_says_the_name_is_missing() {
    let error = Destination::parse("127.0.0.1:5000/giteaadmin/").expect_err("no NAME");
    assert!(
        error
            .message()
            .ends_with("the NAME after giteaadmin/ is missing"),
        "{error}"
    );
}

#[test]
fn host_names_lose_ports_and_brackets() {
    assert_eq!(host_name("localhost:5000"), "localhost");
    assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
    assert_eq!(host_name("[::1]:8443"), "::1");
    assert_eq!(host_name("::1"), "::1");
    assert_eq!(host_name("Example.COM."), "example.com");
}
