//! Integration tests of the CLI: they run the built `clevertap-etl` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod commands;
mod crash;
mod secrets;
mod serve;
mod support;
mod upload;
