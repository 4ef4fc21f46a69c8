//! The command-line tools the job kinds call (`cdk`, `sam`): found before the job starts, so
//! that a runner without the tool fails the job with a cause that says so, instead of bash's
//! `command not found` halfway through. A tool named by its setting (`ATTINI_CDK_CLI`,
//! `ATTINI_SAM_CLI`) by a path is put in front of the script as a shell function, so the
//! generated commands keep their plain `cdk ...` / `sam ...` form. Pure file-system checks;
//! nothing to cancel.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::job::JobKind;
use crate::job::shell_words::quote;

/// Where the kinds' tools are; `None`: the name (`cdk`, `sam`) on the job's PATH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPaths {
    /// `ATTINI_CDK_CLI`: a path or a program name on PATH; default `cdk`.
    pub cdk: Option<String>,
    /// `ATTINI_SAM_CLI`: a path or a program name on PATH; default `sam`.
    pub sam: Option<String>,
}

/// The script lines that make the tool of `kind` callable by its plain name (none when it is
/// on PATH under that name), or the job's failure cause when the tool cannot be found.
/// `path` is the job's `PATH`.
pub fn prelude(kind: JobKind, tools: &ToolPaths, path: &str) -> Result<Option<String>, ToolError> {
    let Some(tool) = kind.tool() else {
        return Ok(None);
    };
    let (name, setting, install) = (tool.program, tool.setting, tool.install);
    let configured = match kind {
        JobKind::Cdk => &tools.cdk,
        JobKind::Sam => &tools.sam,
        JobKind::Commands => return Ok(None),
    };
    let wanted = configured.as_deref().unwrap_or(name);
    let found = if wanted.contains('/') {
        Some(PathBuf::from(wanted)).filter(|p| executable(p))
    } else {
        on_path(wanted, path)
    };
    let Some(found) = found else {
        let origin = match configured {
            Some(_) => format!("{setting} names {wanted:?}, which is not an executable file"),
            None => format!("`{name}` is not on the job's PATH ({path})"),
        };
        return Err(ToolError {
            kind,
            name,
            origin,
            install,
            setting,
        });
    };
    if configured.is_none() {
        return Ok(None);
    }
    let program = quote(&found.to_string_lossy());
    Ok(Some(format!("{name}() {{ {program} \"$@\"; }}")))
}

/// A kind's tool cannot be found: the job fails before it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "A `{kind}` job runs the {name} command-line tool, and {origin}. Install it (`{install}`) or set {setting} to the program's path."
)]
pub struct ToolError {
    /// The job's kind.
    pub kind: JobKind,
    /// The tool's program name.
    pub name: &'static str,
    /// Where it was looked for, and what was found there.
    pub origin: String,
    /// How to install it.
    pub install: &'static str,
    /// The setting that may name it.
    pub setting: &'static str,
}

/// The first executable `name` in the folders of `path`.
fn on_path(name: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| executable(candidate))
}

fn executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(dir: &Path, name: &str) -> PathBuf {
        let file = dir.join(name);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        file
    }

    #[test]
    fn a_tool_on_path_needs_nothing_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        tool(dir.path(), "sam");
        let path = format!("/nonexistent:{}", dir.path().display());
        let none = ToolPaths::default();
        assert_eq!(prelude(JobKind::Sam, &none, &path), Ok(None));
        assert_eq!(prelude(JobKind::Commands, &none, ""), Ok(None));
        let e = prelude(JobKind::Cdk, &none, &path).unwrap_err().to_string();
        assert!(
            e.contains("`cdk` is not on the job's PATH (/nonexistent:"),
            "{e}"
        );
        assert!(
            e.contains("npm install -g aws-cdk") && e.contains("ATTINI_CDK_CLI"),
            "{e}"
        );
    }

    #[test]
    fn a_configured_tool_becomes_a_function_and_a_wrong_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let program = tool(dir.path(), "sam 1.170");
        std::fs::write(dir.path().join("plain"), "").unwrap();
        let tools = ToolPaths {
            sam: Some(program.display().to_string()),
            cdk: Some(dir.path().join("plain").display().to_string()),
        };
        let line = prelude(JobKind::Sam, &tools, "").unwrap().unwrap();
        assert_eq!(line, format!("sam() {{ '{}' \"$@\"; }}", program.display()));
        let e = prelude(JobKind::Cdk, &tools, "").unwrap_err().to_string();
        assert!(
            e.contains("ATTINI_CDK_CLI names") && e.contains("not an executable file"),
            "{e}"
        );
        let by_name = ToolPaths {
            cdk: Some("sam 1.170".into()),
            sam: None,
        };
        let path = dir.path().display().to_string();
        assert!(
            prelude(JobKind::Cdk, &by_name, &path)
                .unwrap()
                .unwrap()
                .starts_with("cdk() {")
        );
    }
}
