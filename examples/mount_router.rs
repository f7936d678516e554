//! Mount the clevertap-etl service inside an existing axum application: under a prefix, next
//! to the host's own routes, state and middleware.
//!
//! The host here has its own state (`HostState`), its own route (`GET /`) and its own
//! middleware (an `x-served-by` header on every answer, the webhook's included). The service's
//! `Router` is already `with_state`d, so it nests into any host router. It uploads to the
//! in-process sandbox; the example binds 127.0.0.1:0, sends itself the seed payload once,
//! prints the answer and exits.
//!
//! Run with: cargo run -p clevertap-etl-examples --example mount_router

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use clevertap_etl_axum::AppState;
use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::{
    Credentials, Deliverer, DeliverySettings, Passcode, Pipeline, Routing, TransformSpec,
};
use tokio::net::TcpListener;

/// Where the host mounts the service.
pub const PREFIX: &str = "/integrations/clevertap";

/// The host application's own state.
#[derive(Clone)]
struct HostState {
    name: &'static str,
}

async fn home(State(host): State<HostState>) -> String {
    format!(
        "{}: CleverTap webhooks go to {PREFIX}/webhooks/clevertap\n",
        host.name
    )
}

/// The host's own middleware: marks every answer, the mounted service's included.
async fn served_by(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-served-by", HeaderValue::from_static("host-app"));
    response
}

/// The host application with the service mounted under [`PREFIX`].
pub fn host_app() -> Result<Router, Box<dyn std::error::Error>> {
    // The service: the seed's mapping, one account, the sandbox instead of CleverTap.
    // Without an intake (a spool) the service is in sync mode: it answers with the final report.
    let account = Credentials {
        account_id: "W44-Z4K-K65Z".try_into()?,
        passcode: Passcode::new("sandbox-accepts-any"),
    };
    let deliverer = Deliverer::new(
        Arc::new(SandboxUploader::default()),
        [account.clone()],
        DeliverySettings::default(),
    );
    let routing = Routing {
        accounts: vec![account.account_id],
        allow_payload_credentials: false,
    };
    let pipeline = Pipeline::new(TransformSpec::default(), routing, Arc::new(deliverer));
    let clevertap = clevertap_etl_axum::app(AppState::new(pipeline));

    Ok(Router::new()
        .route("/", get(home))
        .with_state(HostState { name: "host-app" })
        .nest(PREFIX, clevertap)
        .layer(middleware::from_fn(served_by)))
}

/// What the host answered to the webhook.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The host middleware's header.
    pub served_by: Option<String>,
    /// The delivery report.
    pub report: serde_json::Value,
}

/// Serves the host app on a free loopback port, sends it the seed payload once, stops it.
pub async fn run() -> Result<Answer, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(clevertap_etl_axum::serve(listener, host_app()?, async {
        let _ = stopped.await;
    }));

    // reqwest is built without a TLS provider of its own; install the core's (plain HTTP here).
    clevertap_etl_core::upload::ensure_crypto_provider();
    let client = reqwest::Client::new();
    let home = client
        .get(format!("http://{addr}/"))
        .send()
        .await?
        .text()
        .await?;
    print!("GET / → {home}");
    let response = client
        .post(format!("http://{addr}{PREFIX}/webhooks/clevertap"))
        .header("content-type", "application/json")
        .body(clevertap_etl_examples::SEED)
        .send()
        .await?;
    let answer = Answer {
        status: response.status().as_u16(),
        served_by: response
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        report: response.json().await?,
    };

    let _ = stop.send(());
    server.await??;
    Ok(answer)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let answer = run().await?;
    println!(
        "POST {PREFIX}/webhooks/clevertap → {} (x-served-by: {})",
        answer.status,
        answer.served_by.as_deref().unwrap_or("-")
    );
    println!("{}", serde_json::to_string_pretty(&answer.report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_mounted_service_delivers_the_seed_through_the_host() {
        let answer = super::run().await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.served_by.as_deref(), Some("host-app"));
        assert_eq!(answer.report["state"], "delivered");
        assert_eq!(answer.report["counts"]["processed"], 2);
    }

    #[tokio::test]
    async fn the_service_routes_live_only_under_the_prefix() {
        let app = super::host_app().unwrap();
        let inside = Request::get(format!("{}/healthz", super::PREFIX))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app.clone().oneshot(inside).await.unwrap().status(),
            StatusCode::OK
        );
        let outside = Request::get("/healthz").body(Body::empty()).unwrap();
        assert_eq!(
            app.oneshot(outside).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
}
