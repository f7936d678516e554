//! Authentication of the webhook and `/v1` routes: HTTP Basic and/or a bearer token, compared in
//! constant time.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use clevertap_etl_core::config::ResolvedAuth;
use subtle::ConstantTimeEq;

use crate::ApiError;

/// Lets a request through when it carries valid credentials (or when no auth is configured).
pub(crate) async fn require(
    State(auth): State<ResolvedAuth>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !auth.is_enabled() {
        return Ok(next.run(request).await);
    }
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accepts(&auth, header) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::Unauthorized {
            basic: auth.basic.is_some(),
            bearer: auth.bearer.is_some(),
        })
    }
}

fn accepts(auth: &ResolvedAuth, header: &str) -> bool {
    let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return auth
            .bearer
            .as_ref()
            .is_some_and(|token| same(value, token.expose()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Some((user, password)) = &auth.basic else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) else {
            return false;
        };
        let decoded = String::from_utf8_lossy(&decoded);
        let (u, p) = decoded.split_once(':').unwrap_or((&decoded, ""));
        // Both halves are always compared, so timing does not tell which one was wrong.
        let user_ok = same(u, user);
        let password_ok = same(p, password.expose());
        return user_ok & password_ok;
    }
    false
}

fn same(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clevertap_etl_core::Secret;

    fn auth() -> ResolvedAuth {
        ResolvedAuth {
            basic: Some(("clevertap".into(), Secret::new("s3cret"))),
            bearer: Some(Secret::new("tok")),
        }
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn accepts_right_credentials_only() {
        let a = auth();
        assert!(accepts(&a, &basic("clevertap", "s3cret")));
        assert!(accepts(&a, "Bearer tok"));
        assert!(accepts(&a, "bearer tok"));
        assert!(!accepts(&a, &basic("clevertap", "wrong")));
        assert!(!accepts(&a, &basic("other", "s3cret")));
        assert!(!accepts(&a, "Bearer tok2"));
        assert!(!accepts(&a, "Basic !!!notbase64"));
        assert!(!accepts(&a, ""));
        let only_basic = ResolvedAuth {
            bearer: None,
            ..auth()
        };
        assert!(!accepts(&only_basic, "Bearer tok"));
    }
}
