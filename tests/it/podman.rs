//! Podman with storage of its own, for the image tests (../shared/CONTAINERS.md says why each
//! setting is there): runc, low explicit ulimits, an overlay store under `target/test-tools`
//! shared by the image tests and kept between runs. No registry is reachable, so the Dockerfile's base image is a Debian
//! bookworm root filesystem made with `mmdebstrap` (cached under `target/test-tools`) and
//! imported under the name the Dockerfile uses; the Rust build stage is fed the binary cargo
//! already built (`--build-context build=DIR`, the binary at `DIR/out/attini-runner`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::describe;

/// The base image the Dockerfile names by default.
const BASE_IMAGE: &str = "docker.io/library/debian:bookworm-slim";

/// Podman on the tests' own store, `target/test-tools/podman`, shared by every image test and
/// kept between runs: the targets' tool layers (apt, npm, pip) are built once and reused, and a
/// new binary rebuilds only each target's last layer. Builds take a lock, so that two tests
/// building at once do not build the same layers twice.
pub struct Podman {
    dir: PathBuf,
    run: PathBuf,
    /// Containers this value started, removed on drop.
    containers: std::sync::Mutex<Vec<String>>,
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
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/podman");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        // Podman's run-time state belongs on a file system that a reboot empties (stale state
        // from before one breaks it): /run when writable, else the temporary folder.
        let tag = format!("{:x}", fxhash(dir.to_string_lossy().as_bytes()));
        let run = ["/run", &std::env::temp_dir().to_string_lossy()]
            .iter()
            .map(|base| Path::new(base).join(format!("attini-runner-podman-{tag}")))
            .find(|candidate| std::fs::create_dir_all(candidate).is_ok())
            .expect("a folder for podman's run-time state");
        Some(Podman {
            dir,
            run,
            containers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// `podman` with this store.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.run.join("run"))
            .arg("--tmpdir")
            .arg(self.run.join("libpod"))
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

    /// A container name unique to this test run, removed when this value is dropped.
    pub fn container_name(&self, what: &str) -> String {
        let name = format!("{what}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        self.containers.lock().unwrap().push(name.clone());
        name
    }

    /// Builds `target` of the project's Dockerfile as `tag`, from the test binary (or the one
    /// `ATTINI_IMAGE_BINARY` names: scripts/bench_image.sh measures the release binary's image
    /// with it), and prints the image's size.
    pub fn build(&self, target: &str, tag: &str) {
        let lock = std::fs::File::create(self.dir.join("build.lock")).unwrap();
        lock.lock().unwrap();
        self.import_base();
        let context = tempfile::Builder::new()
            .prefix("build-stage")
            .tempdir_in(&self.dir)
            .unwrap();
        let out = context.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let binary = image_binary();
        std::fs::copy(&binary, out.join("attini-runner")).unwrap();
        let build_context = format!("build={}", context.path().display());
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
        // The image this tag named before is left untagged: dropped here, so that the store
        // stays one set of images however often the tests run (each build of a debug binary
        // leaves some 300 MB otherwise). Layers that a tagged image is built on are kept.
        self.ok(&["image", "prune", "--force"]);
        let bytes: u64 = self
            .ok(&["image", "inspect", "--format", "{{.Size}}", tag])
            .parse()
            .unwrap();
        let binary = std::fs::metadata(&binary).unwrap().len();
        eprintln!(
            "image {target}: {:.0} MB, {:.0} MB without the runner binary (the binary is {:.0} MB)",
            bytes as f64 / 1e6,
            bytes.saturating_sub(binary) as f64 / 1e6,
            binary as f64 / 1e6
        );
    }

    fn import_base(&self) {
        if self
            .output(&["image", "exists", BASE_IMAGE])
            .status
            .success()
        {
            return;
        }
        let tar = base_rootfs();
        self.ok(&["import", "--quiet", path_str(&tar), BASE_IMAGE]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers a failed test left behind.
        for name in self.containers.lock().unwrap().iter() {
            let _ = self.output(&["rm", "--force", "--time", "0", name]);
        }
    }
}

/// The runner binary the images get: `ATTINI_IMAGE_BINARY`, else the test build's.
fn image_binary() -> PathBuf {
    std::env::var_os("ATTINI_IMAGE_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_attini-runner")))
}

/// A stable hash of `bytes` (FNV-1a), for a folder name.
fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
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
pub fn debian_mirror() -> String {
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
