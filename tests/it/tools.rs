//! The real tools the recipe tests run (`sam`, `cdk`, the CDK library for Python, Liquibase,
//! pytest), installed by `scripts/test` under `ATTINI_TEST_TOOLS` (`target/test-tools`).
//! Without that variable and without the folder, a recipe test says so and does nothing; with
//! the variable set (as `scripts/test` does), a missing tool fails the test.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where the tools are.
pub struct Tools {
    root: PathBuf,
}

impl Tools {
    /// The installed tools, or `None` (and a note on stderr) when they were never installed.
    pub fn get(test: &str) -> Option<Tools> {
        let root = match std::env::var("ATTINI_TEST_TOOLS") {
            Ok(root) => PathBuf::from(root),
            Err(_) => {
                let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-tools");
                if !local.join("sam-venv").is_dir() {
                    eprintln!(
                        "{test}: skipped, the recipe tools are not installed (run ./scripts/test)"
                    );
                    return None;
                }
                local
            }
        };
        let tools = Tools { root };
        for program in [
            tools.sam_bin().join("sam"),
            tools.cdk_bin().join("cdk"),
            tools.cdk_python_bin().join("python3"),
            tools.liquibase_bin().join("liquibase"),
            tools.python_bin().join("pytest"),
        ] {
            assert!(
                program.exists(),
                "{} is missing; run ./scripts/test",
                program.display()
            );
        }
        Some(tools)
    }

    /// The AWS SAM CLI's folder.
    pub fn sam_bin(&self) -> PathBuf {
        self.root.join("sam-venv/bin")
    }

    /// The AWS CDK CLI's folder.
    pub fn cdk_bin(&self) -> PathBuf {
        self.root.join("node/node_modules/.bin")
    }

    /// The Python with the CDK library (`aws_cdk`).
    pub fn cdk_python_bin(&self) -> PathBuf {
        self.root.join("cdk-venv/bin")
    }

    /// Liquibase (the npm package's distribution, with its PostgreSQL driver).
    pub fn liquibase_bin(&self) -> PathBuf {
        self.root.join("node/node_modules/liquibase/dist/liquibase")
    }

    /// The tests' Python, with pytest.
    pub fn python_bin(&self) -> PathBuf {
        self.root.join("venv/bin")
    }

    /// `PATH` with `dirs` in front of this process's.
    pub fn path_with(dirs: &[PathBuf]) -> String {
        let mut parts: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        parts.push(std::env::var("PATH").unwrap_or_default());
        parts.join(":")
    }
}

/// The folder of an example, `examples/<name>`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Runs `job` with `attini-runner local` (job file and work folder in `dir`, `env` added);
/// the result line and everything the runner printed.
pub async fn run_local(job: &Value, dir: &Path, env: &[(String, String)]) -> (Value, String) {
    let file = dir.join(format!("job-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, job.to_string()).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_attini-runner"))
        .arg("local")
        .arg(&file)
        .env("ATTINI_WORK_DIR", dir.join("work"))
        .env("ATTINI_JOB_TIMEOUT", "600")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (result, format!("{stdout}{stderr}"))
}
