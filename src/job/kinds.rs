//! Job kinds other than plain commands (`"kind"` in the native format). `cdk` turns the
//! properties of an AttiniCdk step (CONTRACT.md 9.1) into the commands the Attini dispatcher
//! generates for it: synth, save the stacks (only where the Attini resource-state table is
//! configured), deploy, and the step output `{<stack id>: {<output>: <value>}}`. Every value
//! from the job is shell-quoted. Pure; nothing to cancel.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::fields::{self, ParseError};

/// The commands for `kind` with `properties`.
pub fn commands(kind: &str, properties: Option<&Value>) -> Result<Vec<String>, ParseError> {
    match kind {
        "cdk" => {
            let properties = properties.ok_or_else(|| {
                ParseError::field(
                    "properties",
                    "is missing: a `cdk` job needs the AttiniCdk properties (at least `Path`)",
                )
            })?;
            let props: CdkProperties = serde_json::from_value(properties.clone()).map_err(|e| {
                ParseError::field("properties", format!("is invalid for kind `cdk`: {e}"))
            })?;
            cdk_commands(&props)
        }
        other => Err(ParseError::field(
            "kind",
            format!(
                "{other:?} is not a kind this runner knows; use `cdk`, or give the commands as `commands`"
            ),
        )),
    }
}

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

fn quote(value: &str) -> String {
    // Invariant: only a NUL byte makes quoting fail, and job values with NUL are rejected below.
    shlex::try_quote(value)
        .map(|q| q.into_owned())
        .unwrap_or_default()
}

fn scalar(value: &Value, path: &str) -> Result<String, ParseError> {
    fields::scalar_string(value, path)
}

/// The AttiniCdk command list.
pub fn cdk_commands(p: &CdkProperties) -> Result<Vec<String>, ParseError> {
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
    if all_values.into_iter().any(|v| v.contains('\0')) {
        return Err(ParseError::field("properties", "contains a NUL character"));
    }
    let path = match p.path.as_deref().map(str::trim) {
        None | Some("") => "./".to_string(),
        Some(path) if path.starts_with('/') => format!(".{path}"),
        Some(path) => path.to_string(),
    };
    let mut context = Vec::new();
    for (k, v) in &p.context {
        context.push(format!(
            "--context {}",
            quote(&format!(
                "{k}={}",
                scalar(v, &format!("properties.Context.{k}"))?
            ))
        ));
    }
    let mut parameters = Vec::new();
    for (i, config) in p.stack_configuration.iter().enumerate() {
        if config.parameters.is_empty() {
            return Err(ParseError::field(
                format!("properties.StackConfiguration[{i}].Parameters"),
                "needs at least one parameter",
            ));
        }
        for (k, v) in &config.parameters {
            let value = scalar(
                v,
                &format!("properties.StackConfiguration[{i}].Parameters.{k}"),
            )?;
            let target = config
                .stack_name
                .as_ref()
                .map(|s| format!("{s}:"))
                .unwrap_or_default();
            parameters.push(format!(
                "--parameters {}",
                quote(&format!("{target}{k}={value}"))
            ));
        }
    }
    let many = |flag: &str, values: &[String]| {
        values
            .iter()
            .map(|v| format!("{flag} {}", quote(v)))
            .collect::<Vec<_>>()
    };
    let one = |flag: &str, value: &Option<String>| {
        value
            .iter()
            .map(|v| format!("{flag} {}", quote(v)))
            .collect::<Vec<_>>()
    };
    let force = if p.force {
        vec!["--force".to_string()]
    } else {
        vec![]
    };
    let role = one("--role-arn", &p.role_arn);
    let plugins = many("--plugin", &p.plugins);
    let targets = if p.stacks.is_empty() {
        vec!["--all".to_string()]
    } else {
        p.stacks.iter().map(|s| quote(s)).collect()
    };
    let join = |parts: Vec<Vec<String>>| parts.concat().join(" ");

    let synth = join(vec![
        vec!["cdk synth --quiet".into()],
        one("--app", &p.app),
        one("--build", &p.build),
        many("--build-exclude", &p.build_exclude),
        many("--notification-arns", &p.notification_arns),
        force.clone(),
        vec!["--no-color".into()],
        role.clone(),
        plugins.clone(),
        parameters.clone(),
        context.clone(),
        targets.clone(),
    ]);
    let list = join(vec![
        vec!["cdk ls --long --json --no-color".into()],
        role.clone(),
        plugins.clone(),
        context.clone(),
        vec!["--app cdk.out".into()],
        p.stacks.iter().map(|s| quote(s)).collect(),
    ]);
    let deploy = join(vec![
        vec!["cdk deploy --outputs-file \"$ATTINI_OUTPUT.cdk-outputs.json\" --progress events --require-approval never --app cdk.out".into()],
        many("--build-exclude", &p.build_exclude),
        many("--notification-arns", &p.notification_arns),
        force,
        vec!["--no-color".into()],
        role,
        plugins,
        parameters,
        context,
        targets,
    ]);
    let header = r#"\"objectIdentifier\":\"${ATTINI_OBJECT_IDENTIFIER:-}\",\"distributionId\":\"${ATTINI_DISTRIBUTION_ID:-}\",\"distributionName\":\"${ATTINI_DISTRIBUTION_NAME:-}\",\"environment\":\"${ATTINI_ENVIRONMENT_NAME:-}\",\"stepName\":\"${ATTINI_STEP_NAME:-}\""#;
    Ok(vec![
        format!("cd {}", quote(&path)),
        format!(
            "echo {}",
            quote(&format!("Running cdk synth command: {synth}"))
        ),
        synth,
        format!("ATTINI_CDK_STACKS=\"$({list})\""),
        format!(
            "if [ -n \"${{ATTINI_RESOURCE_STATE_TABLE:-}}\" ]; then \"$ATTINI_RUNNER_EXEC\" command-mode save-cdk-stacks \"{{\\\"requestType\\\":\\\"save-cdk-stacks\\\",{header},\\\"stacks\\\":${{ATTINI_CDK_STACKS}}}}\"; fi"
        ),
        format!(
            "echo {}",
            quote(&format!("Running cdk deploy command: {deploy}"))
        ),
        deploy,
        format!(
            "\"$ATTINI_RUNNER_EXEC\" command-mode format-cdk-output \"{{{header},\\\"requestType\\\":\\\"format-cdk-stacks-output\\\",\\\"stacks\\\":${{ATTINI_CDK_STACKS}},\\\"outputs\\\": $(cat \"$ATTINI_OUTPUT.cdk-outputs.json\")}}\" > \"$ATTINI_OUTPUT\""
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cdk(value: Value) -> Result<Vec<String>, ParseError> {
        commands("cdk", Some(&value))
    }

    #[test]
    fn full_properties_become_the_dispatchers_flags() {
        let c = cdk(json!({
            "Path": "/infra", "App": "npx ts-node bin/app.ts", "Stacks": ["Db", "Web"],
            "Context": {"env": "dev", "n": 2}, "Plugins": ["p1"], "Build": "npm run build",
            "BuildExclude": ["node_modules"], "NotificationArns": ["arn:sns"], "Force": true,
            "RoleArn": "arn:aws:iam::1:role/cdk", "Runner": "R",
            "StackConfiguration": [{"StackName": "Db", "Parameters": {"Size": 5}}, {"Parameters": {"Tag": "it's"}}]
        }))
        .unwrap();
        assert_eq!(c[0], "cd ./infra");
        assert_eq!(
            c[2],
            "cdk synth --quiet --app 'npx ts-node bin/app.ts' --build 'npm run build' --build-exclude node_modules \
             --notification-arns arn:sns --force --no-color --role-arn arn:aws:iam::1:role/cdk --plugin p1 \
             --parameters 'Db:Size=5' --parameters \"Tag=it's\" --context 'env=dev' --context 'n=2' Db Web"
        );
        assert_eq!(
            c[3],
            "ATTINI_CDK_STACKS=\"$(cdk ls --long --json --no-color --role-arn arn:aws:iam::1:role/cdk --plugin p1 --context 'env=dev' --context 'n=2' --app cdk.out Db Web)\""
        );
        assert!(c[6].starts_with("cdk deploy --outputs-file \"$ATTINI_OUTPUT.cdk-outputs.json\" --progress events --require-approval never --app cdk.out --build-exclude node_modules"));
        assert!(c[6].ends_with("--context 'n=2' Db Web"));
        assert!(c[7].ends_with("> \"$ATTINI_OUTPUT\""));
    }

    #[test]
    fn defaults_and_refusals() {
        let c = cdk(json!({})).unwrap();
        assert_eq!(c[0], "cd ./");
        assert!(c[2].ends_with("--no-color --all"));
        let e = |v| cdk(v).unwrap_err().to_string();
        assert!(e(json!({"Diff": {"Enabled": true}})).contains("properties.Diff"));
        assert!(e(json!({"Environment": {"A": "1"}})).contains("the job's `environment`"));
        assert!(e(json!({"Stacks": "Db"})).contains("properties` is invalid for kind `cdk`"));
        assert!(e(json!({"Unknown": 1})).contains("unknown field `Unknown`"));
        assert!(
            e(json!({"StackConfiguration": [{"Parameters": {}}]}))
                .contains("needs at least one parameter")
        );
        assert!(
            commands("cdk", None)
                .unwrap_err()
                .to_string()
                .contains("properties` is missing")
        );
        assert!(
            commands("sam", Some(&json!({})))
                .unwrap_err()
                .to_string()
                .contains("\"sam\" is not a kind")
        );
    }
}
