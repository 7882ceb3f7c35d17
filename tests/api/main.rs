//! End-to-end tests over HTTP: every scenario runs on PostgreSQL and on SQLite, each test on a
//! fresh database. One binary, one module per feature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

mod about;
mod attacks;
mod audit;
mod backup;
mod browser;
mod change_stream;
mod concurrency;
mod crash;
mod defaults;
mod documents;
mod documents_cli;
mod drain;
mod errors;
mod exports;
mod faults;
mod feed;
mod findings;
mod first_start;
mod keys;
mod lifecycle;
mod logs;
mod metadata_documents;
mod metrics;
mod process;
mod processes;
mod projector;
mod registration;
mod screens;
mod sealed;
mod search;
mod secrets;
mod security;
mod service;
mod sign_in;
mod snapshots;
mod tamper;
mod verification;
