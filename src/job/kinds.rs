//! Job kinds other than plain commands (`"kind"` in the native format): each turns the
//! properties of the matching Attini step into the commands the Attini dispatcher generates
//! for it (`cdk`, in [`super::cdk`]), or a deploy of its own (`sam`, in [`super::sam`]). Pure;
//! nothing to cancel.

use serde_json::Value;

use super::cdk::cdk_commands;
use super::field_checks::ParseError;
use super::sam::sam_commands;

/// The commands for `kind` with `properties`.
pub fn commands(kind: &str, properties: Option<&Value>) -> Result<Vec<String>, ParseError> {
    match kind {
        "cdk" => cdk_commands(&props(
            kind,
            properties,
            "the AttiniCdk properties (at least `Path`)",
        )?),
        "sam" => sam_commands(&props(kind, properties, "at least `StackName`")?),
        other => Err(ParseError::field(
            "kind",
            format!(
                "{other:?} is not a kind this runner knows; use `cdk` or `sam`, or give the commands as `commands`"
            ),
        )),
    }
}

/// The `properties` of `kind` as `T`; `needs` says what a job must give at least.
fn props<T: serde::de::DeserializeOwned>(
    kind: &str,
    properties: Option<&Value>,
    needs: &str,
) -> Result<T, ParseError> {
    let properties = properties.ok_or_else(|| {
        ParseError::field(
            "properties",
            format!("is missing: a `{kind}` job needs {needs}"),
        )
    })?;
    serde_json::from_value(properties.clone())
        .map_err(|e| ParseError::field("properties", format!("is invalid for kind `{kind}`: {e}")))
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
        assert!(c[1].starts_with("printf '%s' ") && c[2].starts_with("export NODE_OPTIONS="));
        // Parameters and context are handed over in ATTINI_CDK_ARGS, not as arguments.
        let quote = crate::job::shell_words::quote;
        let handed = format!(
            "ATTINI_CDK_ARGS={}",
            quote(
                r#"["--parameters","Db:Size=5","--parameters","Tag=it's","--context","env=dev","--context","n=2"]"#
            )
        );
        let context = format!(
            "ATTINI_CDK_ARGS={}",
            quote(r#"["--context","env=dev","--context","n=2"]"#)
        );
        assert!(
            c[4].contains(&format!(
                "{handed} cdk synth --quiet --app 'npx ts-node bin/app.ts' --build 'npm run build' --build-exclude node_modules \
                 --notification-arns arn:sns --force --no-color --role-arn arn:aws:iam::1:role/cdk --plugin p1 Db Web;"
            )),
            "{}",
            c[4]
        );
        assert!(
            c[5].contains(&format!("ATTINI_CDK_STACKS=\"$({context} cdk ls --long --json --no-color --role-arn arn:aws:iam::1:role/cdk --plugin p1 --app cdk.out Db Web)\"")),
            "{}",
            c[5]
        );
        assert!(c[8].contains("cdk deploy --outputs-file \"$ATTINI_OUTPUT.cdk-outputs.json\" --progress events --require-approval never --app cdk.out --build-exclude node_modules"));
        assert!(c[8].contains("--plugin p1 Db Web;"), "{}", c[8]);
        assert!(c[9].ends_with("> \"$ATTINI_OUTPUT\""));
        // The echoed lines name the context and parameters, never their values.
        for shown in [&c[3], &c[7]] {
            assert!(shown.starts_with("echo "), "{shown}");
            for value in ["env=dev", "n=2", "Size=5", "it's"] {
                assert!(!shown.contains(value), "{value} in {shown}");
            }
            assert!(
                shown.contains("env=***")
                    && shown.contains("Db:Size=***")
                    && shown.contains("Tag=***"),
                "{shown}"
            );
        }
        // No other line holds a value outside ATTINI_CDK_ARGS.
        for line in &c {
            let outside = line.replace(&handed, "").replace(&context, "");
            assert!(
                !outside.contains("env=dev") && !outside.contains("Size=5"),
                "{line}"
            );
        }
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
            commands("helm", Some(&json!({})))
                .unwrap_err()
                .to_string()
                .contains("\"helm\" is not a kind")
        );
    }

    fn sam(value: Value) -> Result<Vec<String>, ParseError> {
        commands("sam", Some(&value))
    }

    #[test]
    fn a_sam_job_deploys_one_stack_and_prints_its_outputs() {
        let c = sam(json!({"StackName": "queues", "Path": "/app"})).unwrap();
        assert_eq!(c[0], "cd ./app");
        assert!(c[1].contains("export AWS_DEFAULT_REGION=\"$AWS_REGION\""));
        assert_eq!(
            c[3],
            "sam deploy --stack-name queues --template-file template.yaml --no-confirm-changeset \
             --no-progressbar --no-fail-on-empty-changeset || { status=$?; \"$ATTINI_RUNNER_EXEC\" \
             command-mode stack-events queues >&2 || true; exit \"$status\"; }"
        );
        assert_eq!(
            c[4],
            "\"$ATTINI_RUNNER_EXEC\" command-mode stack-outputs queues > \"$ATTINI_OUTPUT\""
        );
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn sam_flags_are_quoted_and_a_build_deploys_what_it_built() {
        let c = sam(json!({
            "StackName": "app-1", "Template": "t.yaml", "Build": true, "BuildArgs": ["--cached"],
            "ParameterOverrides": {"Stage": "dev", "Note": "it's", "Size": 3},
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], "Tags": {"team": "a b"},
            "S3Bucket": "b", "S3Prefix": "p/x", "RoleArn": "arn:r", "NotificationArns": ["arn:n"],
            "FailOnEmptyChangeset": true
        }))
        .unwrap();
        assert_eq!(c[3], "sam build --template-file t.yaml --cached");
        // The values go to a SAM config file, written by a builtin: SAM's own quoting inside
        // a TOML string, inside a shell word that bash turns back into it.
        assert!(c[4].starts_with("printf '%s' "), "{}", c[4]);
        let dir = tempfile::tempdir().unwrap();
        let ran = std::process::Command::new("bash")
            .args(["-c", &c[4]])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(ran.success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".attini-samconfig.toml")).unwrap(),
            "version = 0.1\n\n[attini.deploy.parameters]\n\
             parameter_overrides = \"Note=\\\"it's\\\" Size=3 Stage=dev\"\n\
             tags = \"team=\\\"a b\\\"\"\n"
        );
        let deploy = &c[6];
        for part in [
            "--template-file .aws-sam/build/template.yaml",
            " --fail-on-empty-changeset",
            "--config-file \"$PWD/.attini-samconfig.toml\" --config-env attini",
            "--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND",
            "--s3-bucket b --s3-prefix p/x --role-arn arn:r --notification-arns arn:n",
        ] {
            assert!(deploy.contains(part), "{part} not in {deploy}");
        }
        // No value in an argument, none in the echoed line.
        for command in c.iter().filter(|c| !c.starts_with("printf")) {
            for value in ["dev", "it's", "a b", "Size=3"] {
                assert!(!command.contains(value), "{value} in {command}");
            }
        }
        assert!(
            c[5].starts_with("echo ")
                && c[5].contains("Running: sam deploy --stack-name app-1")
                && c[5].contains(
                    "(parameter overrides Note=*** Size=*** Stage=***; tags team=*** in .attini-samconfig.toml)"
                ),
            "{}",
            c[5]
        );
    }

    /// Overrides alone, or tags alone, still get the config file and the flag that reads it.
    #[test]
    fn sam_overrides_or_tags_alone_write_the_config_file() {
        for (properties, line) in [
            (
                json!({"StackName": "a", "ParameterOverrides": {"Stage": "dev"}}),
                "parameter_overrides = \"Stage=dev\"",
            ),
            (
                json!({"StackName": "a", "Tags": {"team": "x"}}),
                "tags = \"team=x\"",
            ),
        ] {
            let c = sam(properties).unwrap();
            let printf = c.iter().find(|c| c.starts_with("printf '%s' "));
            assert!(printf.is_some_and(|p| p.contains(line)), "{c:?}");
            let deploy = c.iter().find(|c| c.starts_with("sam deploy")).unwrap();
            assert!(deploy.contains("--config-file"), "{deploy}");
        }
        // A control character goes into the TOML file escaped, never raw.
        let c = sam(json!({"StackName": "a", "Tags": {"team": "x\u{1}y"}})).unwrap();
        let printf = c.iter().find(|c| c.starts_with("printf")).unwrap();
        // (In the shell word, the TOML escape's backslash is doubled.)
        assert!(
            printf.contains(r"x\\u0001y") && !printf.contains('\u{1}'),
            "{printf}"
        );
    }

    #[test]
    fn sam_refusals_name_the_field() {
        let e = |v| sam(v).unwrap_err().to_string();
        assert!(e(json!({})).contains("\"\" is not a CloudFormation stack name"));
        assert!(e(json!({"StackName": "1x"})).contains("properties.StackName"));
        assert!(e(json!({"StackName": "a_b"})).contains("letters, digits and hyphens"));
        assert!(
            e(json!({"StackName": "a", "ResolveS3": true, "S3Bucket": "b"}))
                .contains("properties.ResolveS3")
        );
        assert!(e(json!({"StackName": "a", "Tags": {"k": [1]}})).contains("properties.Tags.k"));
        assert!(
            e(json!({"StackName": "a", "Tags": {"k": "c:\\"}})).contains("ends with a backslash")
        );
        assert!(
            e(json!({"StackName": "a", "ParameterOverrides": {"a=b": "c"}}))
                .contains("without `=`")
        );
        assert!(e(json!({"StackName": "a", "Stacks": []})).contains("unknown field `Stacks`"));
        assert!(
            commands("sam", None)
                .unwrap_err()
                .to_string()
                .contains("at least `StackName`")
        );
    }
}
