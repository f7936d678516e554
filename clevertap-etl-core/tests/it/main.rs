//! Integration tests of the core crate: one binary, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod deliver;
mod fake;
mod faults;
mod fixtures;
mod props;
mod seed;
mod spool;
mod support;
mod uploader;
