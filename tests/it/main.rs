//! The integration tests: one binary, real bash, real processes, real zips, the real binary,
//! and for the AWS modes a real AWS emulator on loopback running real state machines.

// The tests read their own environment to set up the processes they start; the runner's
// rule (the settings are the only door to it, clippy.toml) is for the runner's code.
#![allow(clippy::disallowed_methods)]

mod arm64;
mod at_scale;
pub mod attini;
mod attini_faults;
mod attini_promises;
mod aws_faults;
mod cache_seed;
mod caches;
pub mod cli;
mod command_mode;
mod concurrency;
mod corpus;
mod deny;
mod deploy;
pub mod deploys;
mod disk;
mod distribution;
mod emulator;
mod examples;
mod executor;
mod faults;
mod harness;
pub mod image;
mod image_recipes;
pub mod integration_tests;
pub mod job_logs;
mod job_roles;
mod layers;
pub mod least_privilege;
mod locks;
mod memory;
mod names;
mod ops;
mod otlp;
mod podman;
pub mod postgres;
mod processes;
mod properties;
mod protection;
mod proxy;
mod replay;
mod scale;
mod scale_to_zero;
mod secrets;
mod serve_cli;
mod shipped;
mod spot;
mod sql_migration;
pub mod stacks;
mod standalone;
mod task_definition;
mod tools;
mod workspace_caches;
mod world;
