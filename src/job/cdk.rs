//! The `cdk` kind: the properties of an AttiniCdk step (CONTRACT.md 9.1) turned into the
//! commands the Attini dispatcher generates for it: synth, save the stacks (only where the
//! Attini resource-state table is configured), deploy, and the step output
//! `{<stack id>: {<output>: <value>}}`. Every value from the job is shell-quoted; the values
//! of `Context` and `Parameters` reach the CLI through [`cdk_args`], never as arguments, and
//! the log shows them as `***`. Pure; nothing to cancel.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::cdk_args;
use super::field_checks::{self, ParseError};
use super::shell_words::{has_nul, join, many, one, project_path, quote};

/// The properties of an AttiniCdk step.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CdkProperties {
    /// Folder of the CDK app in the distribution (`./` when blank).
    #[serde(default)]
    pub path: Option<String>,
    /// `--app`.
    pub app: Option<String>,
    /// Stacks to deploy (all when empty).
    #[serde(default)]
    pub stacks: Vec<String>,
    /// `--context K=V`.
    #[serde(default)]
    pub context: BTreeMap<String, Value>,
    /// `--plugin`.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// `--parameters [Stack:]K=V`.
    #[serde(default)]
    pub stack_configuration: Vec<StackConfiguration>,
    /// `--build`.
    pub build: Option<String>,
    /// `--build-exclude`.
    #[serde(default)]
    pub build_exclude: Vec<String>,
    /// `--notification-arns`.
    #[serde(default)]
    pub notification_arns: Vec<String>,
    /// `--force`.
    #[serde(default)]
    pub force: bool,
    /// `--role-arn`.
    pub role_arn: Option<String>,
    /// The Attini runner the step names; accepted and ignored here.
    #[serde(rename = "Runner")]
    pub _runner: Option<String>,
    /// Rejected: the diff and approval flow belongs to the deployment plan.
    pub diff: Option<Value>,
    /// Rejected: give the job's `environment`.
    pub environment: Option<Value>,
}

/// One `StackConfiguration` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct StackConfiguration {
    /// The stack the parameters are for (all stacks when absent).
    pub stack_name: Option<String>,
    /// Parameter values.
    pub parameters: BTreeMap<String, Value>,
}

fn scalar(value: &Value, path: &str) -> Result<String, ParseError> {
    field_checks::scalar_string(value, path)
}

/// The AttiniCdk command list.
pub fn cdk_commands(p: &CdkProperties) -> Result<Vec<String>, ParseError> {
    check(p)?;
    let flags = Flags::of(p)?;
    Ok(script(&project_path(p.path.as_deref()), p, &flags))
}

/// Rejects what a native job cannot use, and values no shell word can hold.
fn check(p: &CdkProperties) -> Result<(), ParseError> {
    if p.diff.is_some() {
        return Err(ParseError::field(
            "properties.Diff",
            "is part of the Attini deployment plan's approval flow and is not supported in a native job",
        ));
    }
    if p.environment.is_some() {
        return Err(ParseError::field(
            "properties.Environment",
            "is not used here: give the variables as the job's `environment`",
        ));
    }
    let all_values = p
        .stacks
        .iter()
        .chain(&p.plugins)
        .chain(&p.build_exclude)
        .chain(&p.notification_arns)
        .chain(p.app.iter())
        .chain(p.build.iter())
        .chain(p.role_arn.iter())
        .chain(p.path.iter());
    if has_nul(all_values) {
        return Err(ParseError::field("properties", "contains a NUL character"));
    }
    Ok(())
}

/// The flags shared by the cdk commands, already quoted; the values of `Context` and
/// `Parameters` as words for [`cdk_args`], and as the log shows them (`***`).
struct Flags {
    /// `--context k=v ...`, unquoted words.
    context: Vec<String>,
    /// `--parameters [Stack:]k=v ...`, unquoted words.
    parameters: Vec<String>,
    shown_context: Vec<String>,
    shown_parameters: Vec<String>,
    role: Vec<String>,
    plugins: Vec<String>,
    force: Vec<String>,
    targets: Vec<String>,
}

impl Flags {
    fn of(p: &CdkProperties) -> Result<Self, ParseError> {
        let context = context_pairs(p)?;
        let parameters = parameter_pairs(p)?;
        let words = |flag: &str, pairs: &[(String, String)]| -> Vec<String> {
            pairs
                .iter()
                .flat_map(|(name, value)| [flag.to_string(), format!("{name}={value}")])
                .collect()
        };
        let shown = |flag: &str, pairs: &[(String, String)]| -> Vec<String> {
            pairs
                .iter()
                .map(|(name, _)| format!("{flag} {}", quote(&format!("{name}=***"))))
                .collect()
        };
        Ok(Flags {
            context: words("--context", &context),
            parameters: words("--parameters", &parameters),
            shown_context: shown("--context", &context),
            shown_parameters: shown("--parameters", &parameters),
            role: one("--role-arn", &p.role_arn),
            plugins: many("--plugin", &p.plugins),
            force: if p.force {
                vec!["--force".into()]
            } else {
                vec![]
            },
            targets: if p.stacks.is_empty() {
                vec!["--all".to_string()]
            } else {
                p.stacks.iter().map(|s| quote(s)).collect()
            },
        })
    }

    /// Parameters and context: handed over, or as the log shows them.
    fn values(&self, shown: bool) -> Vec<String> {
        match shown {
            true => [self.shown_parameters.clone(), self.shown_context.clone()].concat(),
            false => vec![],
        }
    }

    fn synth(&self, p: &CdkProperties, shown: bool) -> String {
        join(vec![
            vec!["cdk synth --quiet".into()],
            one("--app", &p.app),
            one("--build", &p.build),
            many("--build-exclude", &p.build_exclude),
            many("--notification-arns", &p.notification_arns),
            self.force.clone(),
            vec!["--no-color".into()],
            self.role.clone(),
            self.plugins.clone(),
            self.values(shown),
            self.targets.clone(),
        ])
    }

    fn list(&self, p: &CdkProperties) -> String {
        join(vec![
            vec!["cdk ls --long --json --no-color".into()],
            self.role.clone(),
            self.plugins.clone(),
            vec!["--app cdk.out".into()],
            p.stacks.iter().map(|s| quote(s)).collect(),
        ])
    }

    fn deploy(&self, p: &CdkProperties, shown: bool) -> String {
        join(vec![
            vec!["cdk deploy --outputs-file \"$ATTINI_OUTPUT.cdk-outputs.json\" --progress events --require-approval never --app cdk.out".into()],
            many("--build-exclude", &p.build_exclude),
            many("--notification-arns", &p.notification_arns),
            self.force.clone(),
            vec!["--no-color".into()],
            self.role.clone(),
            self.plugins.clone(),
            self.values(shown),
            self.targets.clone(),
        ])
    }
}

/// `Context` as `(name, value)`.
fn context_pairs(p: &CdkProperties) -> Result<Vec<(String, String)>, ParseError> {
    p.context
        .iter()
        .map(|(k, v)| Ok((k.clone(), scalar(v, &format!("properties.Context.{k}"))?)))
        .collect()
}

/// `StackConfiguration` parameters as `([Stack:]name, value)`.
fn parameter_pairs(p: &CdkProperties) -> Result<Vec<(String, String)>, ParseError> {
    let mut parameters = Vec::new();
    for (i, config) in p.stack_configuration.iter().enumerate() {
        let path = format!("properties.StackConfiguration[{i}].Parameters");
        if config.parameters.is_empty() {
            return Err(ParseError::field(path, "needs at least one parameter"));
        }
        let target = config
            .stack_name
            .as_ref()
            .map(|s| format!("{s}:"))
            .unwrap_or_default();
        for (k, v) in &config.parameters {
            let value = scalar(v, &format!("{path}.{k}"))?;
            parameters.push((format!("{target}{k}"), value));
        }
    }
    Ok(parameters)
}

/// The job's script lines around the three cdk commands.
fn script(path: &str, p: &CdkProperties, flags: &Flags) -> Vec<String> {
    let header = r#"\"objectIdentifier\":\"${ATTINI_OBJECT_IDENTIFIER:-}\",\"distributionId\":\"${ATTINI_DISTRIBUTION_ID:-}\",\"distributionName\":\"${ATTINI_DISTRIBUTION_NAME:-}\",\"environment\":\"${ATTINI_ENVIRONMENT_NAME:-}\",\"stepName\":\"${ATTINI_STEP_NAME:-}\""#;
    let all = [flags.parameters.clone(), flags.context.clone()].concat();
    let mut lines = vec![format!("cd {}", quote(path))];
    lines.extend(cdk_args::setup(!all.is_empty()));
    lines.extend([
        format!(
            "echo {}",
            quote(&format!("Running cdk synth command: {}", flags.synth(p, true)))
        ),
        cdk_args::run(&all, &flags.synth(p, false), |c| c),
        cdk_args::run(&flags.context, &flags.list(p), |c| {
            format!("ATTINI_CDK_STACKS=\"$({c})\"")
        }),
        format!(
            "if [ -n \"${{ATTINI_RESOURCE_STATE_TABLE:-}}\" ]; then \"$ATTINI_RUNNER_EXEC\" command-mode save-cdk-stacks \"{{\\\"requestType\\\":\\\"save-cdk-stacks\\\",{header},\\\"stacks\\\":${{ATTINI_CDK_STACKS}}}}\"; fi"
        ),
        format!(
            "echo {}",
            quote(&format!("Running cdk deploy command: {}", flags.deploy(p, true)))
        ),
        cdk_args::run(&all, &flags.deploy(p, false), |c| c),
        format!(
            "\"$ATTINI_RUNNER_EXEC\" command-mode format-cdk-output \"{{{header},\\\"requestType\\\":\\\"format-cdk-stacks-output\\\",\\\"stacks\\\":${{ATTINI_CDK_STACKS}},\\\"outputs\\\": $(cat \"$ATTINI_OUTPUT.cdk-outputs.json\")}}\" > \"$ATTINI_OUTPUT\""
        ),
    ]);
    lines
}
