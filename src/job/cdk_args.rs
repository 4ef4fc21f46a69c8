//! Keeps a `cdk` job's `Context` and `Parameters` values out of every process's arguments
//! (`/proc/<pid>/cmdline`): the CDK CLI takes them only as arguments, so the job hands them to
//! it in the variable `ATTINI_CDK_ARGS` (JSON words), and a script that Node.js loads first
//! (`NODE_OPTIONS=--require`) appends them to the CLI's `process.argv`, removes the variable
//! (the app the CLI starts never sees it) and leaves a mark. A command whose CLI left no mark
//! did not take them (a `cdk` that is not the Node.js CLI, or that does not pass the job's
//! environment on): the job fails, saying so, rather than deploy without them. Pure text;
//! nothing to cancel.

use super::shell_words::quote;

/// The preload script, next to the job's output file.
const PRELOAD: &str = "\"$ATTINI_OUTPUT.cdk-args.js\"";
/// The mark the preload script leaves.
const TAKEN: &str = "\"$ATTINI_OUTPUT.cdk-args.taken\"";

/// The preload script's text.
const SCRIPT: &str = r#"const v = process.env.ATTINI_CDK_ARGS;
if (v !== undefined) {
  delete process.env.ATTINI_CDK_ARGS;
  process.argv.push(...JSON.parse(v));
  require("fs").writeFileSync(process.env.ATTINI_OUTPUT + ".cdk-args.taken", "");
}
"#;

/// The lines that write the preload script (with `printf`, a shell builtin) and make Node.js
/// load it; none when the job has no values.
pub fn setup(any: bool) -> Vec<String> {
    if !any {
        return vec![];
    }
    vec![
        format!("printf '%s' {} > {PRELOAD}", quote(SCRIPT)),
        format!(
            "export NODE_OPTIONS=\"${{NODE_OPTIONS:+$NODE_OPTIONS }}--require=\\\"$ATTINI_OUTPUT.cdk-args.js\\\"\""
        ),
    ]
}

/// `command` run with `words` (`--context k=v ...`) handed over through the preload script;
/// `wrap` puts the command where it belongs (an assignment, say). As it is when `words` is
/// empty.
pub fn run(words: &[String], command: &str, wrap: impl Fn(String) -> String) -> String {
    if words.is_empty() {
        return wrap(command.to_string());
    }
    let json = serde_json::Value::from(words.to_vec()).to_string();
    let handed = format!("ATTINI_CDK_ARGS={} {command}", quote(&json));
    format!(
        "rm -f {TAKEN}; {}; test -e {TAKEN} || {{ echo {} >&2; exit 1; }}",
        wrap(handed),
        quote(
            "attini-runner: cdk did not take the job's Context and Parameters, which are handed to it through NODE_OPTIONS. \
             Is cdk (or ATTINI_CDK_CLI) the Node.js AWS CDK CLI, run with the job's environment?"
        )
    )
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // The stand-in cdk runs with the test's own PATH.
mod tests {
    use super::*;

    /// Runs `lines` in bash with a stand-in `cdk` (Node.js printing its arguments) on PATH.
    fn bash(lines: &[String], cdk: &str) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("cdk");
        std::fs::write(&bin, cdk).unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("set -eo pipefail\n{}", lines.join("\n"))])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.path().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("ATTINI_OUTPUT", dir.path().join("output"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    #[test]
    fn the_cli_gets_the_values_and_no_argument_holds_them() {
        if std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: no node");
            return;
        }
        let words = ["--context".to_string(), "db=pa55 w0rd".to_string()];
        let node_cdk = "#!/usr/bin/env node\nconst fs = require('fs');\n\
                        const own = fs.readFileSync('/proc/self/cmdline', 'utf8');\n\
                        console.log(JSON.stringify({argv: process.argv.slice(2), cmdline: own, env: process.env.ATTINI_CDK_ARGS || null}));\n";
        let mut lines = setup(true);
        lines.push(run(&words, "cdk synth --quiet", |c| c));
        let (ok, out) = bash(&lines, node_cdk);
        assert!(ok, "{out}");
        let seen: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(
            seen["argv"],
            serde_json::json!(["synth", "--quiet", "--context", "db=pa55 w0rd"])
        );
        assert!(
            !seen["cmdline"].as_str().unwrap().contains("pa55"),
            "{seen}"
        );
        assert_eq!(
            seen["env"],
            serde_json::Value::Null,
            "the app would see them"
        );

        // A cdk that is not the Node.js CLI takes nothing: the job fails and says why.
        let (ok, out) = bash(&lines, "#!/bin/bash\necho \"args: $*\"\n");
        assert!(
            !ok && out.contains("did not take the job's Context and Parameters"),
            "{out}"
        );
    }

    #[test]
    fn without_values_the_command_is_as_it_was() {
        assert!(setup(false).is_empty());
        assert_eq!(
            run(&[], "cdk ls", |c| format!("X=\"$({c})\"")),
            "X=\"$(cdk ls)\""
        );
    }
}
