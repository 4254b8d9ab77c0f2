//! Measurement tools for the workspace; figures are recorded in `BENCHMARKS.md`.
//!
//! - `store_throughput`: registrations and login lookups per second of each store alone
//!   (no hashing), at a given number of accounts.

#![forbid(unsafe_code)]
