//! The integration tests: one binary, real bash, real processes, real zips, the real binary.

mod cli;
mod concurrency;
mod distribution;
mod executor;
mod harness;
mod processes;
