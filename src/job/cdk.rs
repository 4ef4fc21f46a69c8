//! The `cdk` kind: the properties of an AttiniCdk step (CONTRACT.md 9.1) turned into the
//! commands the Attini dispatcher generates for it: synth, save the stacks (only where the
//! Attini resource-state table is configured), deploy, and the step output
//! `{<stack id>: {<output>: <value>}}`. Every value from the job is shell-quoted. Pure;
//! nothing to cancel.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::fields::{self, ParseError};
use super::words::{has_nul, join, many, one, project_path, quote};

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
    fields::scalar_string(value, path)
}

/// The AttiniCdk command list.
pub fn cdk_commands(p: &CdkProperties) -> Result<Vec<String>, ParseError> {
    check(p)?;
    let flags = Flags::of(p)?;
    let masked = Flags::masked(p)?;
    let commands = Commands {
        synth: flags.synth(p),
        list: flags.list(p),
        deploy: flags.deploy(p),
        shown_synth: masked.synth(p),
        shown_deploy: masked.deploy(p),
    };
    Ok(script(&project_path(p.path.as_deref()), &commands))
}

/// The three cdk commands, and the two the job's log shows (values of context and
/// parameters as `***`).
struct Commands {
    synth: String,
    list: String,
    deploy: String,
    shown_synth: String,
    shown_deploy: String,
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

/// The flags shared by the cdk commands, already quoted.
struct Flags {
    context: Vec<String>,
    parameters: Vec<String>,
    role: Vec<String>,
    plugins: Vec<String>,
    force: Vec<String>,
    targets: Vec<String>,
}

impl Flags {
    fn of(p: &CdkProperties) -> Result<Self, ParseError> {
        Ok(Flags {
            context: context_flags(p)?,
            parameters: parameter_flags(p)?,
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

    /// The same flags with every context and parameter value shown as `***`.
    fn masked(p: &CdkProperties) -> Result<Self, ParseError> {
        let mut shown = Flags::of(p)?;
        shown.context = p
            .context
            .keys()
            .map(|k| format!("--context {}", quote(&format!("{k}=***"))))
            .collect();
        shown.parameters =
            p.stack_configuration
                .iter()
                .flat_map(|config| {
                    let target = config
                        .stack_name
                        .as_ref()
                        .map(|s| format!("{s}:"))
                        .unwrap_or_default();
                    config.parameters.keys().map(move |k| {
                        format!("--parameters {}", quote(&format!("{target}{k}=***")))
                    })
                })
                .collect();
        Ok(shown)
    }

    fn synth(&self, p: &CdkProperties) -> String {
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
            self.parameters.clone(),
            self.context.clone(),
            self.targets.clone(),
        ])
    }

    fn list(&self, p: &CdkProperties) -> String {
        join(vec![
            vec!["cdk ls --long --json --no-color".into()],
            self.role.clone(),
            self.plugins.clone(),
            self.context.clone(),
            vec!["--app cdk.out".into()],
            p.stacks.iter().map(|s| quote(s)).collect(),
        ])
    }

    fn deploy(&self, p: &CdkProperties) -> String {
        join(vec![
            vec!["cdk deploy --outputs-file \"$ATTINI_OUTPUT.cdk-outputs.json\" --progress events --require-approval never --app cdk.out".into()],
            many("--build-exclude", &p.build_exclude),
            many("--notification-arns", &p.notification_arns),
            self.force.clone(),
            vec!["--no-color".into()],
            self.role.clone(),
            self.plugins.clone(),
            self.parameters.clone(),
            self.context.clone(),
            self.targets.clone(),
        ])
    }
}

fn context_flags(p: &CdkProperties) -> Result<Vec<String>, ParseError> {
    p.context
        .iter()
        .map(|(k, v)| {
            let value = scalar(v, &format!("properties.Context.{k}"))?;
            Ok(format!("--context {}", quote(&format!("{k}={value}"))))
        })
        .collect()
}

fn parameter_flags(p: &CdkProperties) -> Result<Vec<String>, ParseError> {
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
            let pair = quote(&format!("{target}{k}={value}"));
            parameters.push(format!("--parameters {pair}"));
        }
    }
    Ok(parameters)
}

/// The job's script lines around the three cdk commands.
fn script(path: &str, c: &Commands) -> Vec<String> {
    let (synth, list, deploy) = (&c.synth, &c.list, &c.deploy);
    let header = r#"\"objectIdentifier\":\"${ATTINI_OBJECT_IDENTIFIER:-}\",\"distributionId\":\"${ATTINI_DISTRIBUTION_ID:-}\",\"distributionName\":\"${ATTINI_DISTRIBUTION_NAME:-}\",\"environment\":\"${ATTINI_ENVIRONMENT_NAME:-}\",\"stepName\":\"${ATTINI_STEP_NAME:-}\""#;
    vec![
        format!("cd {}", quote(path)),
        format!(
            "echo {}",
            quote(&format!("Running cdk synth command: {}", c.shown_synth))
        ),
        synth.to_string(),
        format!("ATTINI_CDK_STACKS=\"$({list})\""),
        format!(
            "if [ -n \"${{ATTINI_RESOURCE_STATE_TABLE:-}}\" ]; then \"$ATTINI_RUNNER_EXEC\" command-mode save-cdk-stacks \"{{\\\"requestType\\\":\\\"save-cdk-stacks\\\",{header},\\\"stacks\\\":${{ATTINI_CDK_STACKS}}}}\"; fi"
        ),
        format!(
            "echo {}",
            quote(&format!("Running cdk deploy command: {}", c.shown_deploy))
        ),
        deploy.to_string(),
        format!(
            "\"$ATTINI_RUNNER_EXEC\" command-mode format-cdk-output \"{{{header},\\\"requestType\\\":\\\"format-cdk-stacks-output\\\",\\\"stacks\\\":${{ATTINI_CDK_STACKS}},\\\"outputs\\\": $(cat \"$ATTINI_OUTPUT.cdk-outputs.json\")}}\" > \"$ATTINI_OUTPUT\""
        ),
    ]
}
