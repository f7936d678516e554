//! `GET /openapi.json`: the document matches the real router, both ways.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use clevertap_etl_axum::{app, AppState};
use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::spool::{Intake, Spool, SqliteSpool, Worker};
use clevertap_etl_core::{Config, Pipeline};
use serde_json::Value;

use crate::support::{get, post, seed, send, SEED_ACCOUNT};

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The app in async mode (an in-memory spool, its worker idle), so the deliveries routes are
/// live, uploading to the sandbox.
fn async_app() -> Router {
    let config = Config::from_toml_str(SEED_ACCOUNT).unwrap();
    let creds = config
        .credentials(|_| None, |_| Err(std::io::ErrorKind::NotFound.into()))
        .unwrap();
    let pipeline = Pipeline::from_config(&config, Arc::new(SandboxUploader::default()), creds);
    let spool: Arc<dyn Spool> = Arc::new(SqliteSpool::in_memory().unwrap());
    let worker = Worker::new(
        Arc::clone(&spool),
        Arc::clone(pipeline.deliverer()),
        config.worker_settings(),
    );
    let intake = Intake::new(spool, worker, config.intake_settings());
    app(AppState::new(pipeline).with_intake(intake))
}

/// `(METHOD, path)` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS
                .iter()
                .any(|m| m.as_str().eq_ignore_ascii_case(method))
            {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The paths the router holds. axum has no public listing; its `Debug` prints its
/// `path_router` (then its `fallback_router`) with each path as `RouteId(N): "/path"`. If that
/// format ever changes this fails loudly (no paths found).
fn router_paths(router: &Router) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let start = text
        .find("path_router")
        .expect("axum's Router Debug names path_router");
    let end = text.find("fallback_router").unwrap_or(text.len());
    let mut paths = BTreeSet::new();
    let mut rest = &text[start..end];
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at..];
        let Some(open) = rest.find(": \"") else { break };
        let tail = &rest[open + 3..];
        let Some(close) = tail.find('"') else { break };
        paths.insert(tail[..close].to_owned());
        rest = &tail[close..];
    }
    assert!(
        !paths.is_empty(),
        "no route found in the router's Debug output: {text}"
    );
    paths
}

/// Whether a request found a route: not 405, and not the router's own 404 (`not_found`; a
/// missing delivery answers 404 `no_delivery`, which is a real route's answer).
async fn routed(router: &Router, method: &Method, uri: &str) -> (bool, StatusCode) {
    let mut request = Request::builder().method(method.clone()).uri(uri);
    let body = if method == Method::POST {
        request = request.header("content-type", "application/json");
        Body::from(seed())
    } else {
        Body::empty()
    };
    let (status, _, answer) = send(router.clone(), request.body(body).unwrap()).await;
    let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && answer["error"]["code"] == "not_found");
    (!unrouted, status)
}

#[tokio::test]
async fn the_document_is_served_open_and_lists_the_schemas() {
    let (status, doc) = {
        let (status, _, doc) = send(async_app(), get("/openapi.json")).await;
        (status, doc)
    };
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(
        doc,
        serde_json::to_value(clevertap_etl_axum::openapi()).unwrap()
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "DeliveryReport",
        "Counts",
        "Failure",
        "ErrorBody",
        "Explained",
        "Preview",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let webhook = &doc["paths"]["/webhooks/clevertap"]["post"];
    assert_eq!(
        webhook["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/DeliveryReport"
    );
    assert!(webhook["security"].is_array(), "the webhook requires auth");
    assert!(doc["paths"]["/healthz"]["get"].get("security").is_none());
}

#[tokio::test]
async fn every_documented_operation_is_a_real_route_and_every_route_is_documented() {
    let router = async_app();
    let doc = serde_json::to_value(clevertap_etl_axum::openapi()).unwrap();
    let documented = documented(&doc);

    // A real delivery, so `{id}` routes answer with it.
    let (status, report) = post(router.clone(), "/webhooks/clevertap", seed()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let id = report["delivery_id"].as_str().unwrap().to_owned();
    let concrete = |path: &str| path.replace("{id}", &id);

    // Every documented operation is routed.
    for (method, path) in &documented {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (ok, status) = routed(&router, &method, &concrete(path)).await;
        assert!(ok, "documented {method} {path} answered {status}");
    }

    // Every path of the router is documented, with exactly the methods it answers.
    let real_paths = router_paths(&router);
    let documented_paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(real_paths, documented_paths);
    for path in &real_paths {
        for method in &METHODS {
            let (ok, status) = routed(&router, method, &concrete(path)).await;
            let listed = documented.contains(&(method.as_str().to_owned(), path.clone()));
            assert_eq!(
                ok, listed,
                "{method} {path} answered {status}, documented: {listed}"
            );
        }
    }
}

#[tokio::test]
async fn the_document_stays_open_when_auth_is_configured() {
    let server = wiremock::MockServer::start().await;
    let toml = format!("{SEED_ACCOUNT}[server.auth]\ntoken = \"T0KEN\"\n");
    let app = crate::support::app_for(&server, &toml);
    let (status, _, _) = send(app.clone(), get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(app, get("/v1/deliveries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
