//! Integration tests of the service: the router driven in-process, CleverTap faked by wiremock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod bad_input;
mod guard;
mod intake;
mod observe;
mod openapi;
mod support;
mod webhook;
