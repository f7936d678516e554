//! The fixture corpus: every `tests/fixtures/*.json` payload, planned with the spec beside it
//! (`name.spec.toml`, else the default spec) and one configured account, snapshotted as JSON
//! together with its explanation.

use clevertap_etl_core::{
    explain, transform, transform_owned, AccountId, Routing, TransformSpec, UnixSeconds,
    WebhookPayload,
};
use serde_json::{json, Value};

/// The `now` every fixture is planned at.
const NOW: UnixSeconds = UnixSeconds(1_700_000_000);

/// Plans one fixture and describes the result.
fn check(path: &std::path::Path) -> Value {
    let body = std::fs::read(path).unwrap();
    let spec_path = path.with_extension("spec.toml");
    let spec = match std::fs::read_to_string(&spec_path) {
        Ok(text) => toml::from_str::<TransformSpec>(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", spec_path.display())),
        Err(_) => TransformSpec::default(),
    };
    let routing = Routing {
        accounts: vec![AccountId::try_from("W44-Z4K-K65Z").unwrap()],
        allow_payload_credentials: false,
    };
    let payload = WebhookPayload::from_slice(&body).unwrap();
    let result = transform(&payload, &spec, &routing, NOW);
    assert_eq!(
        transform_owned(payload.clone(), &spec, &routing, NOW),
        result,
        "{}: transform_owned differs",
        path.display()
    );
    match result {
        Ok(plan) => {
            // Every planned record passes validation again, untouched.
            for record in plan.accounts.iter().flat_map(|a| &a.records) {
                assert!(
                    clevertap_etl_core::validate::is_clean(&record.record, &spec.validation),
                    "{}: {:?}",
                    path.display(),
                    record.record
                );
            }
            let explanation = explain(&payload, &plan);
            let text = explanation.to_string();
            json!({
                "plan": plan,
                "explain": text.lines().collect::<Vec<_>>(),
            })
        }
        Err(e) => json!({"error": e.to_string(), "path": e.path()}),
    }
}

#[test]
fn fixtures() {
    insta::glob!("../fixtures", "*.json", |path| {
        insta::assert_json_snapshot!(check(path));
    });
}

#[test]
fn corpus_is_large_enough() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(count >= 20, "{count} fixtures");
}
