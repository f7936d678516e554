//! `demo` and `transform`, which need no network beyond loopback.

use serde_json::{json, Value};

use crate::support::{example, run, stderr, stdout, temp_file};

#[test]
fn demo_runs_the_whole_loop_and_exits_0() {
    let out = run(&["demo"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for stage in ["webhook ", "records ", "request ", "verdict ", "report "] {
        assert!(text.contains(stage), "missing stage {stage:?} in:\n{text}");
    }
    assert!(
        text.contains("Delivered · planned 2 = processed 2"),
        "{text}"
    );
    assert!(
        text.contains("513"),
        "the restricted event's rejection is shown:\n{text}"
    );
    assert!(text.contains("Test · planned"), "{text}");
    assert!(
        !text.contains("IAA-ZAB-GEKL"),
        "the seed's passcode is never printed"
    );
}

#[test]
fn transform_prints_the_seed_records_and_sends_nothing() {
    let out = run(&["transform", example("payloads/seed.json").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["skipped"], json!([]));
    assert_eq!(doc["uploads"][0]["account_id"], "W44-Z4K-K65Z");
    assert_eq!(
        doc["uploads"][0]["body"]["d"],
        json!([
            {"objectId": "__189f188bf9394c0da3d219ea4959a785", "type": "profile",
             "profileData": {"city": "Mumbai", "evtname": "CSV upload event test", "apitest": 23,
                             "datetest": "$D_1589290950", "itp": "1", "test": "1233"}},
            {"objectId": "__189f188bf9394c0da3d219ea4959a785", "type": "event", "evtName": "From Webhook",
             "evtData": {"Event Prop Name": "Property value", "CT App Version": "2.2", "CT Source": "Mobile"}}
        ])
    );
}

#[test]
fn transform_of_a_bad_payload_exits_2_naming_file_and_path() {
    let path = temp_file("bad.json", r#"{"profiles": [{"profileData": 5}]}"#);
    let out = run(&["transform", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.json") && err.contains("profiles[0].profileData"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one readable line: {err}");
}

#[test]
fn transform_with_a_bad_config_exits_2_naming_the_key() {
    let config = temp_file("bad.toml", "[delivery]\nbatch_size = 0\n");
    let out = run(&[
        "transform",
        example("payloads/seed.json").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("delivery.batch_size"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn transform_with_a_missing_file_exits_2() {
    let out = run(&["transform", "/nonexistent/payload.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/payload.json"));
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let config = temp_file(
        "good.toml",
        "[[accounts]]\nid = \"ACC-1\"\npasscode = \"SUPER-SECRET-1\"\n[server.auth]\nusername = \"ct\"\npassword_env = \"CT_IT_PW\"\n",
    );
    let out = crate::support::bin()
        .args(["check-config", "--config", config.to_str().unwrap()])
        .env("CT_IT_PW", "PW-SECRET-2")
        .env("CLEVERTAP_ETL_DELIVERY__BATCH_SIZE", "250")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("batch_size = 250"),
        "the override shows: {text}"
    );
    assert!(
        text.contains("ACC-1") && text.contains("<redacted>"),
        "{text}"
    );
    assert!(
        !text.contains("SUPER-SECRET-1") && !text.contains("PW-SECRET-2"),
        "{text}"
    );
}

#[test]
fn check_config_rejects_unknown_keys_and_missing_secrets() {
    let bad = temp_file("typo.toml", "[server]\nlisen = \"x\"\n");
    let out = run(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("server.lisen"), "{}", stderr(&out));
    let missing = temp_file(
        "missing.toml",
        "[[accounts]]\nid = \"A\"\npasscode_env = \"CT_IT_SURELY_UNSET\"\n",
    );
    let out = run(&["check-config", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("accounts[0].passcode_env"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn transform_explain_shows_verdicts_accounts_and_bodies() {
    let out = run(&[
        "transform",
        "--explain",
        example("payloads/live-campaign.json").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("profiles[0]") && text.contains("→ W44-Z4K-K65Z"),
        "{text}"
    );
    assert!(
        text.contains("send    event \"Cart Reminder Sent\""),
        "{text}"
    );
    assert!(text.contains("reject") && text.contains("523"), "{text}");
    assert!(
        text.contains("#1 → account W44-Z4K-K65Z: 4 records (2 profiles, 2 events)"),
        "{text}"
    );
}
