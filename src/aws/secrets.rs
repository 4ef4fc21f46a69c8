//! Reading the secret references of a job ([`SecretRef`]): Secrets Manager `GetSecretValue`
//! (the `AWSCURRENT` string, or one key of the JSON object it holds) and SSM `GetParameter`
//! with decryption. Transient errors are retried for up to [`SECRET_DEADLINE`]; every other
//! failure says which variable, which secret, what AWS answered and what to do, and never a
//! value. Values are held in memory only. Cancellation: dropping the future stops the reads.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::error::classify;
use crate::calls::{CallError, ErrorClass, with_backoff};
use crate::job::SecretRef;

/// How long transient errors (throttling, timeouts) of one read are retried: 30 s.
pub const SECRET_DEADLINE: Duration = Duration::from_secs(30);

/// The clients the reads need.
#[derive(Debug, Clone)]
pub struct SecretClients {
    /// Secrets Manager.
    pub secrets_manager: aws_sdk_secretsmanager::Client,
    /// Systems Manager (Parameter Store).
    pub ssm: aws_sdk_ssm::Client,
}

/// Reads every reference; variable name -> value. The error is the job's failure cause.
pub async fn read_all(
    clients: &SecretClients,
    references: &BTreeMap<String, SecretRef>,
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for (name, reference) in references {
        let value = read(clients, reference).await.map_err(|problem| {
            format!(
                "secretEnvironment.{name}: could not read the {}: {problem}",
                reference.describe()
            )
        })?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

async fn read(clients: &SecretClients, reference: &SecretRef) -> Result<String, String> {
    match reference {
        SecretRef::SecretsManager { id, json_key } => {
            let out = with_backoff(SECRET_DEADLINE, || async {
                clients
                    .secrets_manager
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| classify("GetSecretValue", e))
            })
            .await
            .map_err(|e| explain(&e, "secretsmanager:GetSecretValue"))?;
            let text = out
                .secret_string
                .ok_or("it holds binary data, not a string; store the value as a secret string")?;
            match json_key {
                None => Ok(text),
                Some(key) => json_value(&text, key),
            }
        }
        SecretRef::SsmParameter { name } => {
            let out = with_backoff(SECRET_DEADLINE, || async {
                clients
                    .ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| classify("GetParameter", e))
            })
            .await
            .map_err(|e| explain(&e, "ssm:GetParameter (and kms:Decrypt for a SecureString)"))?;
            out.parameter
                .and_then(|p| p.value)
                .ok_or_else(|| "AWS returned no value for it".to_string())
        }
    }
}

/// The `key` of the JSON object in `text` (a string as it is, a number or boolean as text).
fn json_value(text: &str, key: &str) -> Result<String, String> {
    let object: Value = serde_json::from_str(text)
        .map_err(|_| format!("jsonKey {key:?} was given but the secret is not a JSON object"))?;
    match object.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        Some(_) => Err(format!(
            "its key {key:?} is not a string, number or boolean"
        )),
        None => Err(format!(
            "it has no key {key:?}; check jsonKey (keys are case-sensitive)"
        )),
    }
}

fn explain(e: &CallError, permission: &str) -> String {
    match e.class {
        ErrorClass::Missing => format!(
            "it does not exist ({}); check the name or ARN and the region",
            e.message
        ),
        ErrorClass::Denied => format!(
            "access denied ({}); the runner's role needs {permission} on it",
            e.message
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_key_is_taken_from_the_object_and_misses_say_why() {
        let secret = r#"{"password": "pw", "port": 5432, "nested": {"a": 1}}"#;
        assert_eq!(json_value(secret, "password").unwrap(), "pw");
        assert_eq!(json_value(secret, "port").unwrap(), "5432");
        assert!(
            json_value(secret, "Password")
                .unwrap_err()
                .contains("no key")
        );
        assert!(
            json_value(secret, "nested")
                .unwrap_err()
                .contains("not a string")
        );
        let e = json_value("plain-text-pw", "password").unwrap_err();
        assert!(e.contains("not a JSON object"), "{e}");
        assert!(!e.contains("plain-text-pw"), "the value never shows: {e}");
    }
}
