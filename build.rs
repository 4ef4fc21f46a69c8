//! Link settings of the binaries. On Linux with glibc they are linked with packed relative
//! relocations (`-z pack-relative-relocs`, glibc 2.36 and binutils 2.38 or later, as in Debian
//! bookworm): the runner's 1.5 MB relocation table, read at every start, becomes a few
//! kilobytes, which the idle runner no longer holds in memory.

// A build script reads cargo's variables, not the runner's settings.
#![allow(clippy::disallowed_methods)]

fn main() {
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux && gnu {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
