//! Runs the binary.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The built binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clevertap-etl"))
}

/// Runs the binary with `args` and returns what it printed.
pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env_remove("CLEVERTAP_ETL_CONFIG")
        .output()
        .unwrap()
}

/// A file of the workspace's examples.
pub fn example(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel)
}

/// Writes `text` to a fresh file in a temp dir and returns its path.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "clevertap-etl-cli-it-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An HTTP client for talking to the service.
pub fn client() -> reqwest::Client {
    clevertap_etl_core::upload::ensure_crypto_provider();
    reqwest::Client::new()
}

/// POSTs `body` to `url` and returns the JSON answer.
pub async fn post_json(url: &str, body: Vec<u8>) -> serde_json::Value {
    client()
        .post(url)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GETs `url` and returns the JSON answer.
pub async fn get_json(url: &str) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
