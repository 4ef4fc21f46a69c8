//! What a job is ([`JobKind`]): a command list, or a kind whose commands the runner generates
//! (`cdk`, `sam`), each with the command-line tool it runs ([`Tool`]) and the label metrics,
//! traces and `/jobs` show. Constants only; nothing to cancel.

/// What a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// A command list (every Attini job, and native jobs with `commands`).
    Commands,
    /// `"kind": "cdk"`: an AttiniCdk step's commands.
    Cdk,
    /// `"kind": "sam"`: one AWS SAM application deployed as one stack.
    Sam,
}

/// The command-line tool a kind runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// Its program name on `PATH` (and the name the generated commands call).
    pub program: &'static str,
    /// The setting that may name another program or a path.
    pub setting: &'static str,
    /// How to install it, for the cause of a job that cannot find it.
    pub install: &'static str,
}

impl JobKind {
    /// The kind a native `kind` names; `None` for a name this runner does not know.
    pub fn from_name(name: &str) -> Option<JobKind> {
        match name {
            "cdk" => Some(JobKind::Cdk),
            "sam" => Some(JobKind::Sam),
            _ => None,
        }
    }

    /// Its label in metrics, traces and `/jobs`: `commands`, `cdk`, `sam`.
    pub fn label(self) -> &'static str {
        match self {
            JobKind::Commands => "commands",
            JobKind::Cdk => "cdk",
            JobKind::Sam => "sam",
        }
    }

    /// The tool it runs; `None` for a command list.
    pub fn tool(self) -> Option<Tool> {
        match self {
            JobKind::Commands => None,
            JobKind::Cdk => Some(Tool {
                program: "cdk",
                setting: "ATTINI_CDK_CLI",
                install: "npm install -g aws-cdk",
            }),
            JobKind::Sam => Some(Tool {
                program: "sam",
                setting: "ATTINI_SAM_CLI",
                install: "pip install aws-sam-cli",
            }),
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_tools_agree() {
        for kind in [JobKind::Cdk, JobKind::Sam] {
            assert_eq!(JobKind::from_name(kind.label()), Some(kind));
            assert_eq!(kind.tool().map(|t| t.program), Some(kind.label()));
        }
        assert_eq!(JobKind::from_name("commands"), None);
        assert_eq!(JobKind::Commands.tool(), None);
        assert_eq!(JobKind::Sam.to_string(), "sam");
    }
}
