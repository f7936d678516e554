//! Bad input at the HTTP layer: `POST /webhooks/clevertap` (sync mode, in-process) never
//! panics, and answers a malformed body with a 4xx and `{"error": {"code", "message", "path"}}`
//! naming the JSON path of the fault where there is one.
//!
//! The committed corpus is `tests/fixtures/bad/`; the big cases (deep nesting, 10 MB strings,
//! a body past the size limit) are generated here rather than committed.

use std::path::PathBuf;

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{app_for, post, seed, SEED_ACCOUNT};

const ROUTE: &str = "/webhooks/clevertap";
const MB: usize = 1024 * 1024;

/// What a bad body must be answered with.
#[derive(Debug, Clone, Copy)]
struct Expect {
    status: StatusCode,
    code: &'static str,
    /// The JSON path the error names (`None`: the answer's `path` is null).
    path: Option<&'static str>,
}

const fn invalid(path: &'static str) -> Expect {
    Expect {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_payload",
        path: Some(path),
    }
}

/// The expected answer for each file of `tests/fixtures/bad/`. A file missing from this table
/// fails the test: every case states what it expects.
fn expected(file: &str) -> Expect {
    match file {
        "truncated.json" => invalid("profiles[0].profileData.city"),
        "empty.json" | "null.json" | "top-level-array.json" | "profiles-missing.json" => {
            invalid(".")
        }
        "trailing-garbage.json" => invalid("."),
        "profiles-a-string.json" => invalid("profiles"),
        "key-values-an-array.json" => invalid("key_values"),
        "is-test-an-array.json" => invalid("is_test"),
        "profile-data-an-array.json" => invalid("profiles[1].profileData"),
        "event-properties-a-number.json" => invalid("profiles[0].event_properties"),
        "identity-an-object.json" => invalid("profiles[0].identity"),
        "all-identities-of-booleans.json" => invalid("profiles[0].all_identities[0]"),
        "huge-number-1e400.json" => invalid("profiles[0].profileData.score"),
        "identity-2-pow-64-plus-1.json" => invalid("profiles[0].identity"),
        "invalid-utf8.json" => invalid("profiles[0].profileData.city"),
        "lone-surrogate.json" => invalid("profiles[0].profileData.k"),
        other => panic!("tests/fixtures/bad/{other} has no expectation in bad_input.rs"),
    }
}

/// `depth` nested arrays around `inner`.
fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

/// The generated cases: name, body, expected answer.
fn generated() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let big = "x".repeat(10 * MB);
    let deep_objects = format!(
        r#"{{"profiles": [{{"objectId": "__a", "profileData": {}1{}}}]}}"#,
        r#"{"a": "#.repeat(10_000),
        "}".repeat(10_000)
    );
    vec![
        (
            "10,000 nested arrays as the body",
            nested(10_000, "").into_bytes(),
            invalid("."),
        ),
        (
            "10,000 nested arrays as a profile property",
            format!(
                r#"{{"profiles": [{{"objectId": "__a", "profileData": {{"k": {}}}}}]}}"#,
                nested(10_000, "1")
            )
            .into_bytes(),
            // serde_json's recursion limit (128) stops it; the path goes as deep as it got.
            Expect {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_payload",
                path: None,
            },
        ),
        (
            "10,000 nested objects as profileData",
            deep_objects.into_bytes(),
            Expect {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_payload",
                path: None,
            },
        ),
        (
            "a 10 MB string as profiles",
            json!({ "profiles": big }).to_string().into_bytes(),
            invalid("profiles"),
        ),
        (
            "a 10 MB string as an identity list item of the wrong type",
            format!(r#"{{"profiles": [{{"all_identities": ["{big}", {{}}]}}]}}"#).into_bytes(),
            invalid("profiles[0].all_identities[1]"),
        ),
        (
            "a body past max_body_bytes (16 MiB)",
            json!({ "profiles": [], "pad": "y".repeat(17 * MB) })
                .to_string()
                .into_bytes(),
            Expect {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "payload_too_large",
                path: None,
            },
        ),
    ]
}

/// A 4xx with the one JSON error shape; its path, when `expect` names one, or any path for a
/// deep-nesting case (`path: None` with `invalid_payload`).
fn assert_error(name: &str, status: StatusCode, answer: &Value, expect: Expect) {
    assert_eq!(status, expect.status, "{name}: {answer}");
    let error = &answer["error"];
    assert_eq!(error["code"], expect.code, "{name}: {answer}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{name}: {answer}"
    );
    match (expect.path, expect.code) {
        (Some(path), _) => assert_eq!(error["path"], path, "{name}: {answer}"),
        (None, "invalid_payload") => {
            assert!(error["path"].is_string(), "{name}: {answer}");
            assert!(
                error["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("recursion limit")),
                "{name}: {answer}"
            );
        }
        (None, _) => assert_eq!(error["path"], Value::Null, "{name}: {answer}"),
    }
}

fn success() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": "success", "processed": 2, "unprocessed": []}))
}

#[tokio::test]
async fn bad_input_corpus() {
    let server = MockServer::start().await;
    let app = app_for(&server, SEED_ACCOUNT);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{} fixtures", files.len());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&file).unwrap();
        let (status, answer) = post(app.clone(), ROUTE, body).await;
        assert_error(&name, status, &answer, expected(&name));
    }
    for (name, body, expect) in generated() {
        let (status, answer) = post(app.clone(), ROUTE, body).await;
        assert_error(name, status, &answer, expect);
    }
    // Nothing bad reached CleverTap.
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// A 10 MB string in an otherwise valid payload is accepted: validation cuts the value to
/// CleverTap's 512 bytes (`value_length = "fix"`, the default) before anything is sent.
#[tokio::test]
async fn a_10_mb_value_in_a_valid_payload_is_cut_to_512_bytes_and_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success())
        .expect(1)
        .mount(&server)
        .await;
    let body = json!({"profiles": [{"objectId": "__big",
        "profileData": {"bio": "é".repeat(5 * MB)}, "event_properties": {"note": "n"}}]});
    let (status, report) = post(
        app_for(&server, SEED_ACCOUNT),
        ROUTE,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["state"], "delivered", "{report}");
    let sent = &server.received_requests().await.unwrap()[0];
    assert!(sent.body.len() < 2048, "{} bytes sent", sent.body.len());
    let sent: Value = serde_json::from_slice(&sent.body).unwrap();
    let bio = sent["d"][0]["profileData"]["bio"].as_str().unwrap();
    assert!(bio.len() <= 512 && bio.len() >= 510, "{} bytes", bio.len());
    assert!(bio.chars().all(|c| c == 'é'), "cut inside a character");
}

/// Bodies the property test posts: arbitrary bytes, and the seed payload truncated or with a
/// byte overwritten (closer to what a broken sender produces).
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let seed = seed();
    let len = seed.len();
    let truncated = {
        let seed = seed.clone();
        (0..len).prop_map(move |n| seed[..n].to_vec())
    };
    let overwritten = (0..len, any::<u8>()).prop_map(move |(at, byte)| {
        let mut body = seed.clone();
        body[at] = byte;
        body
    });
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..512),
        1 => truncated,
        2 => overwritten,
    ]
}

#[test]
fn arbitrary_bodies_never_panic_and_answer_200_or_a_json_4xx() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_server, app) = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(success())
            .mount(&server)
            .await;
        let app = app_for(&server, SEED_ACCOUNT);
        (server, app)
    });
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&bodies(), |body| {
            let (status, answer) = runtime.block_on(post(app.clone(), ROUTE, body));
            if status == StatusCode::OK {
                prop_assert!(answer["counts"].is_object(), "{}", answer);
            } else {
                prop_assert!(status.is_client_error(), "{} {}", status, answer);
                let error = &answer["error"];
                prop_assert!(error["code"].is_string(), "{}", answer);
                prop_assert!(error["message"].is_string(), "{}", answer);
                prop_assert!(
                    error["path"].is_string() || error["path"].is_null(),
                    "{}",
                    answer
                );
            }
            Ok(())
        })
        .unwrap();
}
