//! `clevertap-etl send PAYLOAD --url URL`: play CleverTap's webhook sender against a running
//! service, once (printing the answer) or many times (printing a summary).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::read_input;
use crate::error::CliError;

/// How to authenticate.
#[derive(Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// HTTP Basic.
    Basic(String, String),
    /// A bearer token.
    Bearer(String),
}

impl Auth {
    /// From the `--basic USER:PASSWORD` and `--token` flags.
    pub fn from_flags(basic: Option<String>, token: Option<String>) -> Self {
        match (basic, token) {
            (Some(b), _) => {
                let (user, pass) = b.split_once(':').unwrap_or((&b, ""));
                Auth::Basic(user.to_owned(), pass.to_owned())
            }
            (None, Some(t)) => Auth::Bearer(t),
            (None, None) => Auth::None,
        }
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Basic(user, pass) => request.basic_auth(user, Some(pass)),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }
}

/// Repetition settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How many requests in all.
    pub repeat: u64,
    /// How many at once.
    pub concurrency: u64,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// One answer: status (or the transport error) and the time it took.
struct Answer {
    status: Result<u16, String>,
    elapsed: Duration,
    body: String,
}

/// Sends the payload and prints the answer(s). Fails with exit code 3 when the service cannot
/// be reached at all, 1 when any answer is not 2xx.
pub async fn run(payload: &Path, url: &str, auth: Auth, options: Options) -> Result<(), CliError> {
    let body = read_input(payload)?;
    clevertap_etl_core::upload::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .map_err(|e| CliError::Unreachable(e.to_string()))?;
    if options.repeat == 1 {
        let answer = send_one(&client, url, &auth, body).await;
        return match answer.status {
            Ok(status) => {
                println!("HTTP {status} in {} ms", answer.elapsed.as_millis());
                println!("{}", pretty(&answer.body));
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(CliError::Incomplete(format!(
                        "the service answered HTTP {status}"
                    )))
                }
            }
            Err(e) => Err(CliError::Unreachable(format!("{url}: {e}"))),
        };
    }
    let answers = send_many(&client, url, &auth, body, options).await;
    let summary = Summary::of(&answers.0, answers.1);
    summary.print();
    if summary.errors == options.repeat {
        Err(CliError::Unreachable(format!(
            "{url}: no request got an answer"
        )))
    } else if summary.non_success > 0 || summary.errors > 0 {
        Err(CliError::Incomplete(format!(
            "{} of {} requests did not get a 2xx answer",
            summary.non_success + summary.errors,
            options.repeat
        )))
    } else {
        Ok(())
    }
}

async fn send_one(client: &reqwest::Client, url: &str, auth: &Auth, body: Vec<u8>) -> Answer {
    let started = Instant::now();
    let request = auth.apply(
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body),
    );
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Answer {
                status: Ok(status),
                elapsed: started.elapsed(),
                body,
            }
        }
        Err(e) => Answer {
            status: Err(e.without_url().to_string()),
            elapsed: started.elapsed(),
            body: String::new(),
        },
    }
}

async fn send_many(
    client: &reqwest::Client,
    url: &str,
    auth: &Auth,
    body: Vec<u8>,
    options: Options,
) -> (Vec<Answer>, Duration) {
    let permits = Arc::new(Semaphore::new(
        usize::try_from(options.concurrency).unwrap_or(1),
    ));
    let body = bytes_of(body);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.repeat {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (client, url, auth, body) =
            (client.clone(), url.to_owned(), auth.clone(), body.clone());
        tasks.spawn(async move {
            let answer = send_one(&client, &url, &auth, body.to_vec()).await;
            drop(permit);
            answer
        });
    }
    let mut answers = Vec::with_capacity(usize::try_from(options.repeat).unwrap_or(0));
    while let Some(done) = tasks.join_next().await {
        if let Ok(answer) = done {
            answers.push(answer);
        }
    }
    (answers, started.elapsed())
}

fn bytes_of(body: Vec<u8>) -> Arc<[u8]> {
    Arc::from(body.into_boxed_slice())
}

fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}

/// What a repeated run saw.
struct Summary {
    total: usize,
    statuses: BTreeMap<String, u64>,
    non_success: u64,
    errors: u64,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Summary {
    fn of(answers: &[Answer], wall: Duration) -> Self {
        let mut statuses = BTreeMap::new();
        let (mut non_success, mut errors) = (0, 0);
        for a in answers {
            let key = match &a.status {
                Ok(s) => {
                    if !(200..300).contains(s) {
                        non_success += 1;
                    }
                    s.to_string()
                }
                Err(_) => {
                    errors += 1;
                    "error".to_owned()
                }
            };
            *statuses.entry(key).or_insert(0) += 1;
        }
        let mut latencies: Vec<Duration> = answers.iter().map(|a| a.elapsed).collect();
        latencies.sort();
        Summary {
            total: answers.len(),
            statuses,
            non_success,
            errors,
            wall,
            latencies,
        }
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rate = self.total as f64 / self.wall.as_secs_f64().max(f64::EPSILON);
        println!(
            "requests   {} in {:.2} s ({rate:.0}/s)",
            self.total,
            self.wall.as_secs_f64()
        );
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        println!("statuses   {}", statuses.join(", "));
        println!(
            "latency    p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(100.0))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let answers: Vec<Answer> = (1..=100)
            .map(|ms| Answer {
                status: Ok(if ms == 100 { 503 } else { 200 }),
                elapsed: Duration::from_millis(ms),
                body: String::new(),
            })
            .collect();
        let s = Summary::of(&answers, Duration::from_secs(1));
        assert_eq!(s.percentile(50.0), Duration::from_millis(50));
        assert_eq!(s.percentile(99.0), Duration::from_millis(99));
        assert_eq!(s.percentile(100.0), Duration::from_millis(100));
        assert_eq!(s.non_success, 1);
        assert_eq!(s.statuses["200"], 99);
    }

    #[test]
    fn basic_flag_splits_at_the_first_colon() {
        match Auth::from_flags(Some("u:p:q".into()), None) {
            Auth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("u", "p:q")),
            _ => panic!("expected basic auth"),
        }
    }
}
