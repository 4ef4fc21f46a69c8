//! The integration tests: one binary, real bash, real processes, real zips, the real binary,
//! and for the AWS modes a real AWS emulator on loopback running real state machines.

pub mod attini;
mod attini_promises;
mod aws_faults;
pub mod cli;
mod command_mode;
mod concurrency;
mod corpus;
mod deny;
mod deploys;
mod distribution;
mod emulator;
mod examples;
mod executor;
mod faults;
mod harness;
mod image;
mod integration_tests;
mod layers;
mod ops;
mod otlp;
mod podman;
mod postgres;
mod processes;
mod properties;
mod protection;
mod proxy;
mod scale;
mod secrets;
mod serve_cli;
mod shipped;
mod sql_migration;
mod stacks;
mod standalone;
mod task_definition;
mod tools;
mod world;
