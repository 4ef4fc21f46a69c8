//! Podman with storage of its own, for the image tests (../shared/CONTAINERS.md says why each
//! setting is there): runc, low explicit ulimits, an overlay store under a temporary folder that
//! is removed with it. No registry is reachable, so the Dockerfile's base image is a Debian
//! bookworm root filesystem made with `mmdebstrap` (cached under `target/test-tools`) and
//! imported under the name the Dockerfile uses; the Rust build stage is fed the binary cargo
//! already built (`--build-context build=DIR`, the binary at `DIR/out/attini-runner`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::describe;

/// The base image the Dockerfile names by default.
const BASE_IMAGE: &str = "docker.io/library/debian:bookworm-slim";

/// Podman on a private store.
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// Podman when it is installed. `None` (with the reason printed) only where it is not and
    /// `ATTINI_TEST_REQUIRE_PODMAN` is unset; `./scripts/test` installs it and sets that
    /// variable, so there a missing podman fails the test.
    pub fn if_installed() -> Option<Podman> {
        let missing: Vec<&str> = ["podman", "mmdebstrap", "runc"]
            .into_iter()
            .filter(|tool| !on_path(tool))
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "{} not installed (./scripts/test installs them)",
                missing.join(", ")
            );
            assert!(
                std::env::var_os("ATTINI_TEST_REQUIRE_PODMAN").is_none(),
                "the image tests need podman: {why}"
            );
            eprintln!("SKIPPED: the image tests need podman: {why}");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("pm").tempdir().unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        Some(Podman { dir })
    }

    /// `podman` with this store.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--root")
            .arg(self.dir.path().join("storage"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            // libpod's own state (default /run/libpod) is private too: another test's
            // `system reset` would otherwise remove it under this one.
            .arg("--tmpdir")
            .arg(self.dir.path().join("libpod"))
            .args(["--storage-driver", "overlay"]);
        command
    }

    /// Runs podman with `args` and returns what it printed; panics unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(out.status.success(), "podman {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs podman with `args`, whatever its exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("podman runs")
    }

    /// Builds `target` of the project's Dockerfile as `tag`, from the test binary.
    pub fn build(&self, target: &str, tag: &str) {
        self.import_base();
        let context = self.dir.path().join("build-stage");
        let release = context.join("out");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_attini-runner"),
            release.join("attini-runner"),
        )
        .unwrap();
        let build_context = format!("build={}", context.display());
        // The CAs this machine trusts, for npm and pip inside the build (a TLS-inspecting proxy
        // in front of the registries needs its CA there too).
        let ca = std::env::var("SSL_CERT_FILE")
            .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
        let secret = format!("id=build-ca,src={ca}");
        let secret_args: &[&str] = if Path::new(&ca).is_file() {
            &["--secret", &secret]
        } else {
            &[]
        };
        self.ok(&[
            &["build"][..],
            secret_args,
            &[
                "--quiet",
                "--pull=never",
                "--format",
                "docker",
                "--build-context",
                &build_context,
                "--build-arg",
                "SOURCE_URL=https://example.com/attini-runner",
                "--target",
                target,
                "--tag",
                tag,
                env!("CARGO_MANIFEST_DIR"),
            ],
        ]
        .concat());
    }

    fn import_base(&self) {
        let tar = base_rootfs();
        self.ok(&["import", "--quiet", path_str(&tar), BASE_IMAGE]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers a failed test left behind, then the store's mounts.
        let _ = self.output(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.output(&["system", "reset", "--force"]);
    }
}

/// The Debian bookworm root filesystem, made once per checkout (about 86 MB, 20 to 30 s) and
/// kept in `target/test-tools`. A lock file keeps two tests from making it at once.
fn base_rootfs() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("bookworm-min.tar");
    let lock = std::fs::File::create(dir.join("bookworm-min.lock")).unwrap();
    lock.lock().unwrap();
    if !tar.exists() {
        let partial = dir.join("bookworm-min.tar.partial");
        let out = Command::new("mmdebstrap")
            .args([
                "--quiet",
                "--variant=minbase",
                "--include=ca-certificates,bash",
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                "--aptopt=APT::Install-Recommends \"false\"",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                "--format=tar",
                "bookworm",
            ])
            .arg(&partial)
            .arg(debian_mirror())
            .output()
            .unwrap();
        assert!(out.status.success(), "mmdebstrap: {}", describe(&out));
        std::fs::rename(&partial, &tar).unwrap();
    }
    tar
}

/// The Debian mirror of this machine's own apt sources.
fn debian_mirror() -> String {
    let sources = [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ]
    .iter()
    .filter_map(|path| std::fs::read_to_string(path).ok())
    .collect::<Vec<_>>()
    .join("\n");
    sources
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            line.strip_prefix("URIs:").map(str::trim).or_else(|| {
                line.strip_prefix("deb ")
                    .and_then(|rest| rest.split_whitespace().next())
            })
        })
        .find(|uri| uri.ends_with("/debian"))
        .unwrap_or("http://deb.debian.org/debian")
        .to_string()
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
