//! The AWS emulator the AWS-mode tests talk to, started by the test on a free loopback port.
//!
//! `ATTINI_TEST_EMULATOR` picks it: `ministack` (default; keeps failure causes, retries
//! waitForTaskToken tasks correctly), `moto` (`moto_server` from `moto[server]`; enforces
//! heartbeats), or an `http://` URL of one already running (LocalStack, a shared emulator).
//! ../shared/EMULATORS.md says which gets what right.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use attini_runner::aws::Clients;
use tokio::process::{Child, Command};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// A running emulator; stopped when dropped.
pub struct Emulator {
    /// Its URL.
    pub endpoint: String,
    _child: Option<Child>,
    _port: Option<PortLease>,
}

impl Emulator {
    /// Starts the emulator named by `ATTINI_TEST_EMULATOR` and waits until it answers.
    pub async fn start() -> Emulator {
        let choice = std::env::var("ATTINI_TEST_EMULATOR").unwrap_or_else(|_| "ministack".into());
        Self::start_kind(&choice).await
    }

    /// Starts a named emulator (`ministack`, `moto`) or uses a URL.
    pub async fn start_kind(choice: &str) -> Emulator {
        Self::start_with(choice, &[]).await
    }

    /// Ministack enforcing IAM (`AUTH=true`): every call is checked against the caller's
    /// policies, `AssumeRole` against the role's trust policy, and expired sessions are
    /// refused. The key `test` is the account's root.
    pub async fn with_iam() -> Emulator {
        Self::start_with("ministack", &[("AUTH", "true")]).await
    }

    async fn start_with(choice: &str, env: &[(&str, &str)]) -> Emulator {
        if choice.starts_with("http://") || choice.starts_with("https://") {
            return Emulator {
                endpoint: choice.trim_end_matches('/').to_string(),
                _child: None,
                _port: None,
            };
        }
        // A port found free can be taken before the emulator binds it: then the emulator
        // exits, and it is started again on another port.
        for _ in 0..5 {
            let port = PortLease::take();
            let mut child = spawn(choice, port.number, env);
            if !wait_until_listening(port.number, &mut child).await {
                continue;
            }
            let endpoint = format!("http://127.0.0.1:{}", port.number);
            if choice == "moto" {
                let body = r#"{"stepfunctions": {"execute_state_machine": true}}"#;
                reqwest::Client::new()
                    .post(format!("{endpoint}/moto-api/config"))
                    .body(body)
                    .send()
                    .await
                    .expect("moto config");
            }
            return Emulator {
                endpoint,
                _child: Some(child),
                _port: Some(port),
            };
        }
        panic!("{choice} did not start on any of five ports");
    }

    /// Clients for this emulator.
    pub async fn clients(&self) -> Clients {
        Clients::for_endpoint(&self.endpoint, REGION, Default::default()).await
    }

    /// The variables that point the runner binary at this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", REGION),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

fn spawn(choice: &str, port: u16, env: &[(&str, &str)]) -> Child {
    let mut command = match choice {
        "ministack" => {
            let mut c = Command::new("ministack");
            c.env("BIND_HOST", "127.0.0.1")
                .env("GATEWAY_PORT", port.to_string());
            c
        }
        "moto" => {
            let mut c = Command::new("moto_server");
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            c
        }
        other => panic!("ATTINI_TEST_EMULATOR={other:?}: use ministack, moto or an http:// URL"),
    };
    let (stdout, stderr) = log_to(choice, port);
    command
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {choice}: {e}; run ./scripts/test, which installs it")
        })
}

/// Where the emulator's output goes: nowhere, or with `ATTINI_TEST_EMULATOR_LOG=FOLDER` to
/// `FOLDER/<emulator>-<port>.log` (its tracebacks tell where an emulator itself failed).
fn log_to(choice: &str, port: u16) -> (Stdio, Stdio) {
    let Some(folder) = std::env::var_os("ATTINI_TEST_EMULATOR_LOG") else {
        return (Stdio::null(), Stdio::null());
    };
    std::fs::create_dir_all(&folder).unwrap();
    let file =
        std::fs::File::create(std::path::Path::new(&folder).join(format!("{choice}-{port}.log")))
            .unwrap();
    (file.try_clone().unwrap().into(), file.into())
}

/// A loopback port no other test of this checkout uses while the lease is held: found free,
/// then claimed with a lock file under the target folder (released when the test ends, even
/// when it is killed).
struct PortLease {
    number: u16,
    _lock: std::fs::File,
}

impl PortLease {
    fn take() -> PortLease {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ports");
        std::fs::create_dir_all(&dir).unwrap();
        loop {
            let number = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let lock = std::fs::File::create(dir.join(format!("{number}.lock"))).unwrap();
            if lock.try_lock().is_ok() {
                return PortLease {
                    number,
                    _lock: lock,
                };
            }
        }
    }
}

/// Waits until the emulator listens on `port`; false when it exited first (port taken).
async fn wait_until_listening(port: u16, child: &mut Child) -> bool {
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child.try_wait().unwrap().is_none();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the emulator did not listen on port {port} within 30 s");
}
