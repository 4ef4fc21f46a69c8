//! The runner for arm64 (Graviton): the crate cross-compiled for `aarch64-unknown-linux-gnu` and
//! its hello job run under qemu-user.
//!
//! rustup cannot download the aarch64 standard library here (only the package registries are
//! reachable), and Debian bookworm's is Rust 1.63, too old for this crate. Debian unstable has
//! Rust 1.97 with `libstd-rust-dev:arm64`, so the test makes a Debian unstable root with
//! mmdebstrap (rustc, cargo, the arm64 standard library, the aarch64 cross gcc and qemu-user;
//! about 1.9 GB, once, kept in `target/test-tools/sid-arm64`), builds the crate in it from this
//! checkout (mounted read-only, in a mount namespace of its own) and runs
//! `attini-runner local examples/hello/job.json` with qemu-aarch64. Needs root (chroot, mounts);
//! `./scripts/test` runs as root in CI. Elsewhere it says why and does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::describe;

/// The aarch64 machine number of an ELF header (`e_machine`).
const EM_AARCH64: u16 = 183;

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools")
}

/// The Debian unstable root, made once (under a lock).
fn sid_root() -> PathBuf {
    let dir = tools_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("sid-arm64");
    let lock = std::fs::File::create(dir.join("sid-arm64.lock")).unwrap();
    lock.lock().unwrap();
    if !root.join("usr/bin/cargo").exists() {
        let partial = dir.join("sid-arm64.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let out = Command::new("mmdebstrap")
            .args([
                "--quiet",
                "--variant=minbase",
                "--architectures=amd64,arm64",
                "--include=rustc,cargo,libstd-rust-dev:arm64,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross,qemu-user,bash,ca-certificates",
                "--aptopt=APT::Install-Recommends \"false\"",
                // The registry's copy of unstable may be older than its Valid-Until.
                "--aptopt=Acquire::Check-Valid-Until \"false\"",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "sid",
            ])
            .arg(&partial)
            .arg(crate::podman::debian_mirror())
            .output()
            .unwrap();
        assert!(out.status.success(), "mmdebstrap: {}", describe(&out));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::rename(&partial, &root).unwrap();
    }
    root
}

#[test]
fn the_arm64_build_runs_the_hello_job_under_qemu() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        assert!(
            std::env::var_os("ATTINI_TEST_REQUIRE_ARM64").is_none(),
            "the arm64 test needs root (chroot and mounts)"
        );
        eprintln!("SKIPPED: the arm64 test needs root (chroot and mounts)");
        return;
    }
    let root = sid_root();
    let build = tools_dir().join("arm64-build");
    std::fs::create_dir_all(build.join("target")).unwrap();
    std::fs::create_dir_all(build.join("cargo-home")).unwrap();
    for dir in ["src", "build", "cargo-home"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    // The CAs this machine trusts, for cargo's downloads (a TLS-inspecting proxy's too).
    let ca = std::env::var("SSL_CERT_FILE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    std::fs::copy(&ca, root.join("host-ca.crt")).unwrap();
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    let script = format!(
        "set -e\n\
         mount --bind -o ro {src} {root}/src\n\
         mount --bind {build}/target {root}/build\n\
         mount --bind {build}/cargo-home {root}/cargo-home\n\
         mount -t proc proc {root}/proc\n\
         exec chroot {root} /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp \
           CARGO_HOME=/cargo-home CARGO_TARGET_DIR=/build CARGO_HTTP_CAINFO=/host-ca.crt \
           CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
           CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
           bash -c 'cd /src && rustc --version && \
             cargo build --quiet --locked --ignore-rust-version --bin attini-runner --target aarch64-unknown-linux-gnu \
               --config \"profile.dev.package.\\\"*\\\".opt-level=0\" --config profile.dev.debug=0 --config profile.dev.incremental=false && \
             cd /tmp && ATTINI_WORK_DIR=/tmp/work qemu-aarch64 -L /usr/aarch64-linux-gnu \
               /build/aarch64-unknown-linux-gnu/debug/attini-runner local /src/examples/hello/job.json'\n",
        src = env!("CARGO_MANIFEST_DIR"),
        root = root.display(),
        build = build.display(),
    );
    // A mount namespace of its own: the mounts end with the command, whatever happens.
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", stdout.lines().next().unwrap_or_default());
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&out)));
    assert_eq!(result["status"], "SUCCEEDED", "{}", describe(&out));
    assert_eq!(result["output"]["greeting"], "Hello, Attini");

    let binary =
        std::fs::read(build.join("target/aarch64-unknown-linux-gnu/debug/attini-runner")).unwrap();
    assert_eq!(&binary[..4], b"\x7fELF");
    let machine = u16::from_le_bytes([binary[18], binary[19]]);
    assert_eq!(machine, EM_AARCH64, "the binary is not for aarch64");
}
