//! Job kinds other than plain commands (`"kind"` in the native format): each turns the
//! properties of the matching Attini step into the commands the Attini dispatcher generates
//! for it. `cdk` is in [`super::cdk`]. Pure; nothing to cancel.

use serde_json::Value;

use super::cdk::{CdkProperties, cdk_commands};
use super::fields::ParseError;

/// The [`JobSpec::kind`](super::JobSpec::kind) of a known `kind`.
pub fn name(kind: &str) -> &'static str {
    match kind {
        "cdk" => "cdk",
        _ => super::KIND_COMMANDS,
    }
}

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
