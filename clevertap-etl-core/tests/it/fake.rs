//! A hand-rolled fake CleverTap Upload API on 127.0.0.1 (HTTP/1.1, keep-alive), for what
//! wiremock cannot show: how many requests are in flight per account at once.
//!
//! Each request is counted in flight from when its body has been read until just before its
//! answer is written, per `X-CleverTap-Account-Id`. Past the hidden `limit` it answers 429 at
//! once; otherwise it waits `latency` (and, for a held account, until released) and answers
//! `success` with every record processed. Shared by the integration tests and the benchmark.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How the fake behaves.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    /// How long an admitted request takes.
    pub latency: Duration,
    /// Requests allowed in flight per account; past it, 429.
    pub limit: Option<usize>,
    /// Keep every request body (account, JSON) for inspection.
    pub keep_bodies: bool,
}

/// A running fake; it stops when dropped.
pub struct Fake {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct State {
    config: FakeConfig,
    requests: AtomicUsize,
    throttled: AtomicUsize,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: Mutex<HashMap<String, usize>>,
    bodies: Mutex<Vec<(String, serde_json::Value)>>,
    held: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[allow(dead_code)] // each user needs a different part
impl Fake {
    /// Starts a fake on an ephemeral loopback port.
    pub async fn start(config: FakeConfig) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            config,
            ..State::default()
        });
        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&accept_state)));
            }
        });
        Fake { addr, state, task }
    }

    /// The base URL to give the uploader.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received, 429s included.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests answered 429.
    pub fn throttled(&self) -> usize {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once for an account.
    pub fn max_in_flight(&self, account: &str) -> usize {
        *self
            .state
            .max_in_flight
            .lock()
            .unwrap()
            .get(account)
            .unwrap_or(&0)
    }

    /// Requests in flight now for an account.
    pub fn in_flight(&self, account: &str) -> usize {
        *self
            .state
            .in_flight
            .lock()
            .unwrap()
            .get(account)
            .unwrap_or(&0)
    }

    /// The bodies received (with `keep_bodies`), in arrival order.
    pub fn bodies(&self) -> Vec<(String, serde_json::Value)> {
        self.state.bodies.lock().unwrap().clone()
    }

    /// Admitted requests for the account wait until [`Fake::release`].
    pub fn hold(&self, account: &str) {
        self.state
            .held
            .lock()
            .unwrap()
            .insert(account.to_owned(), Arc::new(Semaphore::new(0)));
    }

    /// Lets the account's held requests go on.
    pub fn release(&self, account: &str) {
        if let Some(gate) = self.state.held.lock().unwrap().remove(account) {
            gate.close();
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut length = 0usize;
        let mut account = String::new();
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("x-clevertap-account-id") {
                account = value.to_owned();
            }
        }
        let total = head_end + 4 + length;
        while buf.len() < total {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..total).skip(head_end + 4).collect();
        let (status, text) = state.handle(&account, &body).await;
        let reason = if status == 200 {
            "OK"
        } else {
            "Too Many Requests"
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

impl State {
    async fn handle(&self, account: &str, body: &[u8]) -> (u16, String) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            let n = in_flight.entry(account.to_owned()).or_default();
            if self.config.limit.is_some_and(|limit| *n >= limit) {
                self.throttled.fetch_add(1, Ordering::SeqCst);
                return (
                    429,
                    r#"{"status":"fail","error":"Too many concurrent requests","code":429}"#.into(),
                );
            }
            *n += 1;
            let mut max = self.max_in_flight.lock().unwrap();
            let m = max.entry(account.to_owned()).or_default();
            *m = (*m).max(*n);
        }
        let records = if self.config.keep_bodies {
            let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let records = json["d"].as_array().map_or(0, Vec::len);
            self.bodies.lock().unwrap().push((account.to_owned(), json));
            records
        } else {
            // Count without building values: the benchmark sends megabytes.
            #[derive(serde::Deserialize)]
            struct Body {
                d: Vec<serde::de::IgnoredAny>,
            }
            serde_json::from_slice::<Body>(body).map_or(0, |b| b.d.len())
        };
        let gate = self.held.lock().unwrap().get(account).cloned();
        if let Some(gate) = gate {
            let _ = gate.acquire().await;
        }
        tokio::time::sleep(self.config.latency).await;
        *self
            .in_flight
            .lock()
            .unwrap()
            .entry(account.to_owned())
            .or_default() -= 1;
        (
            200,
            format!(r#"{{"status":"success","processed":{records},"unprocessed":[]}}"#),
        )
    }
}
