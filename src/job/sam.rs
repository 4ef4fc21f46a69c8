//! The `sam` kind: an AWS SAM application built (optionally) and deployed as one stack, whose
//! outputs become the job's output `{"<OutputKey>": "<OutputValue>"}`. A failed deploy prints
//! the stack's failure events (`command-mode stack-events`) so that CloudFormation's reason is
//! in the job's failure cause. Every value from the job is shell-quoted. Parameter override
//! and tag values go to SAM through a config file the script writes with a shell builtin
//! ([`CONFIG_FILE`]), never as arguments (which any process can read in `/proc/<pid>/cmdline`),
//! and the echoed command line shows their names only. Pure; nothing to cancel.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::field_checks::{self, ParseError};
use super::shell_words::{has_nul, join, one, project_path, quote};

/// The properties of a `sam` job (PascalCase, like the cdk kind's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SamProperties {
    /// Folder of the SAM project in the distribution (`./` when blank).
    pub path: Option<String>,
    /// The template, relative to `Path`; default `template.yaml`.
    pub template: Option<String>,
    /// The CloudFormation stack to create or update (required).
    #[serde(default)]
    pub stack_name: String,
    /// Run `sam build` first and deploy what it built (`.aws-sam/build/template.yaml`).
    #[serde(default)]
    pub build: bool,
    /// More arguments for `sam build`, one word each (e.g. `["--cached", "--parallel"]`).
    #[serde(default)]
    pub build_args: Vec<String>,
    /// `--parameter-overrides K=V`.
    #[serde(default)]
    pub parameter_overrides: BTreeMap<String, Value>,
    /// `--capabilities` (e.g. `CAPABILITY_IAM`); none by default.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `--tags K=V`.
    #[serde(default)]
    pub tags: BTreeMap<String, Value>,
    /// `--s3-bucket` for the packaged artifacts.
    pub s3_bucket: Option<String>,
    /// `--s3-prefix`.
    pub s3_prefix: Option<String>,
    /// `--resolve-s3`: let SAM create and use its managed bucket.
    #[serde(default, rename = "ResolveS3")]
    pub resolve_s3: bool,
    /// `--role-arn`: the role CloudFormation assumes.
    pub role_arn: Option<String>,
    /// `--notification-arns`.
    #[serde(default)]
    pub notification_arns: Vec<String>,
    /// Fail when there is nothing to change; default false (`--no-fail-on-empty-changeset`).
    #[serde(default)]
    pub fail_on_empty_changeset: bool,
}

/// The first command after `cd`: SAM's region and telemetry.
const ENVIRONMENT: &str = "if [ -z \"${AWS_DEFAULT_REGION:-}\" ] && [ -n \"${AWS_REGION:-}\" ]; then export AWS_DEFAULT_REGION=\"$AWS_REGION\"; fi; export SAM_CLI_TELEMETRY=\"${SAM_CLI_TELEMETRY:-0}\"";

/// The SAM config file holding the parameter overrides and tags, in the project folder, and
/// the config environment in it.
pub const CONFIG_FILE: &str = ".attini-samconfig.toml";
const CONFIG_ENV: &str = "attini";

/// The longest stack name CloudFormation accepts.
const MAX_STACK_NAME: usize = 128;

/// The `sam` command list.
pub fn sam_commands(p: &SamProperties) -> Result<Vec<String>, ParseError> {
    check(p)?;
    let template = p.template.as_deref().unwrap_or("template.yaml");
    let stack = quote(&p.stack_name);
    let mut commands = vec![
        format!("cd {}", quote(&project_path(p.path.as_deref()))),
        // SAM reads the region from AWS_DEFAULT_REGION only (ECS sets both); no telemetry
        // unless the job asks for it (the Attini task definition sets the same).
        ENVIRONMENT.to_string(),
    ];
    let deployed = if p.build {
        let build = join(vec![
            vec![format!("sam build --template-file {}", quote(template))],
            p.build_args.iter().map(|a| quote(a)).collect(),
        ]);
        commands.push(format!("echo {}", quote(&format!("Running: {build}"))));
        commands.push(build);
        ".aws-sam/build/template.yaml"
    } else {
        template
    };
    let overrides = pairs(&p.parameter_overrides, "ParameterOverrides")?;
    let tags = pairs(&p.tags, "Tags")?;
    let config = if overrides.is_empty() && tags.is_empty() {
        vec![]
    } else {
        // printf is a bash builtin: the values are in no process's arguments.
        commands.push(format!(
            "printf '%s' {} > {CONFIG_FILE}",
            quote(&config_file(&overrides, &tags))
        ));
        vec![format!(
            "--config-file \"$PWD/{CONFIG_FILE}\" --config-env {CONFIG_ENV}"
        )]
    };
    let deploy = join(vec![
        vec![format!(
            "sam deploy --stack-name {stack} --template-file {} --no-confirm-changeset --no-progressbar",
            quote(deployed)
        )],
        vec![if p.fail_on_empty_changeset {
            "--fail-on-empty-changeset".into()
        } else {
            "--no-fail-on-empty-changeset".into()
        }],
        config,
        words("--capabilities", &p.capabilities),
        one("--s3-bucket", &p.s3_bucket),
        one("--s3-prefix", &p.s3_prefix),
        if p.resolve_s3 {
            vec!["--resolve-s3".into()]
        } else {
            vec![]
        },
        one("--role-arn", &p.role_arn),
        words("--notification-arns", &p.notification_arns),
    ]);
    let shown = [
        ("parameter overrides", &p.parameter_overrides),
        ("tags", &p.tags),
    ]
    .iter()
    .filter(|(_, values)| !values.is_empty())
    .map(|(what, values)| {
        let names: Vec<String> = values.keys().map(|k| format!("{k}=***")).collect();
        format!("{what} {}", names.join(" "))
    })
    .collect::<Vec<_>>();
    let shown = match shown.is_empty() {
        true => String::new(),
        false => format!(" ({} in {CONFIG_FILE})", shown.join("; ")),
    };
    commands.push(format!(
        "echo {}",
        quote(&format!("Running: {deploy}{shown}"))
    ));
    commands.push(format!(
        "{deploy} || {{ status=$?; \"$ATTINI_RUNNER_EXEC\" command-mode stack-events {stack} >&2 || true; exit \"$status\"; }}"
    ));
    commands.push(format!(
        "\"$ATTINI_RUNNER_EXEC\" command-mode stack-outputs {stack} > \"$ATTINI_OUTPUT\""
    ));
    Ok(commands)
}

/// Refuses a missing or malformed stack name, contradicting flags and values with NUL.
fn check(p: &SamProperties) -> Result<(), ParseError> {
    let name = &p.stack_name;
    let valid = name.len() <= MAX_STACK_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(ParseError::field(
            "properties.StackName",
            format!(
                "{name:?} is not a CloudFormation stack name: give 1 to {MAX_STACK_NAME} letters, digits and hyphens, starting with a letter"
            ),
        ));
    }
    if p.resolve_s3 && p.s3_bucket.is_some() {
        return Err(ParseError::field(
            "properties.ResolveS3",
            "cannot be combined with `S3Bucket`: give the bucket, or let SAM resolve one",
        ));
    }
    let all_values = p
        .build_args
        .iter()
        .chain(&p.capabilities)
        .chain(&p.notification_arns)
        .chain(p.path.iter())
        .chain(p.template.iter())
        .chain(p.s3_bucket.iter())
        .chain(p.s3_prefix.iter())
        .chain(p.role_arn.iter());
    if has_nul(all_values) {
        return Err(ParseError::field("properties", "contains a NUL character"));
    }
    Ok(())
}

/// `flag v1 v2 ...`: one flag with several words, as SAM takes them.
fn words(flag: &str, values: &[String]) -> Vec<String> {
    if values.is_empty() {
        return vec![];
    }
    let mut parts = vec![flag.to_string()];
    parts.extend(values.iter().map(|v| quote(v)));
    vec![parts.join(" ")]
}

/// `K=V` for each of a map of scalars, in SAM's quoting; the field name is for errors.
fn pairs(values: &BTreeMap<String, Value>, field: &str) -> Result<Vec<String>, ParseError> {
    values
        .iter()
        .map(|(k, v)| {
            let path = format!("properties.{field}.{k}");
            let value = field_checks::scalar_string(v, &path)?;
            if k.is_empty() || k.contains(['=', '\0']) || value.contains('\0') {
                return Err(ParseError::field(
                    path,
                    "needs a name without `=` and no NUL",
                ));
            }
            if value.ends_with('\\') {
                return Err(ParseError::field(
                    path,
                    "ends with a backslash, which SAM would read as escaping its closing quote",
                ));
            }
            Ok(format!("{k}={}", sam_quoted(&value)))
        })
        .collect()
}

/// The SAM config file: the overrides and tags of the `attini` environment's deploy, each
/// as the one string SAM reads from the command line.
fn config_file(overrides: &[String], tags: &[String]) -> String {
    let mut text = format!("version = 0.1\n\n[{CONFIG_ENV}.deploy.parameters]\n");
    for (key, values) in [("parameter_overrides", overrides), ("tags", tags)] {
        if !values.is_empty() {
            text.push_str(&format!("{key} = {}\n", toml_string(&values.join(" "))));
        }
    }
    text
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value` as SAM's `--parameter-overrides` and `--tags` read it: a value with blanks or
/// quotes in double quotes, its `"` escaped (SAM splits unquoted values at spaces).
fn sam_quoted(value: &str) -> String {
    if value.contains([' ', '\t', '\n', '"', '\'']) || value.is_empty() {
        format!("\"{}\"", value.replace('"', "\\\""))
    } else {
        value.to_string()
    }
}
