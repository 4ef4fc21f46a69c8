//! The CDK stacks event of `save-cdk-stacks` and `format-cdk-output` (CONTRACT.md 8): its
//! shape, the step output built from it, and the `CloudformationStack` items saved for it.
//! Pure; nothing to cancel.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The value given for a stack output when two stacks share a name.
pub const AMBIGUOUS_OUTPUT: &str =
    "Could not resolve stack output, multiple stacks with same name detected in app";

/// The `save-cdk-stacks` / `format-cdk-output` event (unknown keys ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StacksEvent {
    /// Distribution id.
    pub distribution_id: Option<String>,
    /// Distribution name.
    pub distribution_name: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Object identifier of the distribution.
    pub object_identifier: Option<String>,
    /// Step name.
    pub step_name: Option<String>,
    /// `cdk ls --long --json`.
    #[serde(default)]
    pub stacks: Vec<Stack>,
    /// `cdk deploy --outputs-file` content: stack name -> outputs.
    #[serde(default)]
    pub outputs: Map<String, Value>,
}

/// One entry of `cdk ls --long --json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stack {
    /// CloudFormation stack name.
    #[serde(default)]
    pub name: String,
    /// CDK construct id.
    #[serde(default)]
    pub id: String,
    /// Target account and region.
    #[serde(default)]
    pub environment: StackEnvironment,
}

/// `environment` of a stack.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StackEnvironment {
    /// Region, or `unknown-region`.
    #[serde(default)]
    pub region: String,
    /// Account, or `unknown-account`.
    #[serde(default)]
    pub account: String,
}

/// The step output of a CDK deploy: stack id -> outputs of the stack's name (`{}` when none).
pub fn format_cdk_output(event: &StacksEvent) -> Value {
    let mut out = Map::new();
    for stack in &event.stacks {
        let same_name = event.stacks.iter().filter(|s| s.name == stack.name).count();
        let value = if same_name > 1 {
            Value::String(AMBIGUOUS_OUTPUT.into())
        } else {
            event
                .outputs
                .get(&stack.name)
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()))
        };
        out.insert(stack.id.clone(), value);
    }
    Value::Object(out)
}

/// The resource-state items `save-cdk-stacks` writes, with `unknown-` regions and accounts
/// replaced by `region` and `account`.
pub fn stack_items(event: &StacksEvent, region: &str, account: &str) -> Vec<Vec<(String, String)>> {
    event
        .stacks
        .iter()
        .map(|stack| {
            let r = if stack.environment.region.contains("unknown-")
                || stack.environment.region.is_empty()
            {
                region
            } else {
                &stack.environment.region
            };
            let a = if stack.environment.account.contains("unknown-")
                || stack.environment.account.is_empty()
            {
                account
            } else {
                &stack.environment.account
            };
            let mut item = vec![
                (
                    "resourceType".to_string(),
                    "CloudformationStack".to_string(),
                ),
                ("name".to_string(), format!("{}-{r}-{a}", stack.name)),
                ("stackType".to_string(), "Cdk".to_string()),
            ];
            let optional = [
                ("stepName", &event.step_name),
                ("distributionName", &event.distribution_name),
                ("distributionId", &event.distribution_id),
                ("attiniObjectIdentifier", &event.object_identifier),
                ("environment", &event.environment),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    item.push((key.to_string(), v.clone()));
                }
            }
            item
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Value) -> StacksEvent {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn outputs_are_keyed_by_stack_id() {
        let e = event(json!({
            "requestType": "format-cdk-stacks-output", "extra": 1,
            "stacks": [
                {"name": "app-db", "id": "Db", "environment": {"region": "eu-west-1", "account": "1", "name": "x"}},
                {"name": "app-web", "id": "Web", "environment": {"region": "eu-west-1", "account": "1"}}
            ],
            "outputs": {"app-db": {"Arn": "arn:x"}}
        }));
        assert_eq!(
            format_cdk_output(&e),
            json!({"Db": {"Arn": "arn:x"}, "Web": {}})
        );
    }

    #[test]
    fn stacks_sharing_a_name_are_ambiguous() {
        let e = event(
            json!({"stacks": [{"name": "s", "id": "A"}, {"name": "s", "id": "B"}], "outputs": {"s": {"k": "v"}}}),
        );
        assert_eq!(
            format_cdk_output(&e),
            json!({"A": AMBIGUOUS_OUTPUT, "B": AMBIGUOUS_OUTPUT})
        );
    }

    #[test]
    fn unknown_environments_are_replaced() {
        let e = event(json!({
            "distributionId": "d1", "distributionName": "demo", "environment": "dev",
            "objectIdentifier": "o#1", "stepName": "Deploy",
            "stacks": [{"name": "s", "id": "S", "environment": {"region": "unknown-region", "account": "unknown-account"}}]
        }));
        let items = stack_items(&e, "eu-north-1", "111122223333");
        assert_eq!(
            items[0],
            [
                ("resourceType", "CloudformationStack"),
                ("name", "s-eu-north-1-111122223333"),
                ("stackType", "Cdk"),
                ("stepName", "Deploy"),
                ("distributionName", "demo"),
                ("distributionId", "d1"),
                ("attiniObjectIdentifier", "o#1"),
                ("environment", "dev"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
