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
    pub secrets_manager: super::lazy::Lazy<aws_sdk_secretsmanager::Client>,
    /// Systems Manager (Parameter Store).
    pub ssm: super::lazy::Lazy<aws_sdk_ssm::Client>,
    /// Where failed calls are counted.
    pub figures: std::sync::Arc<crate::metrics::Figures>,
}

/// A reference that could not be read: which variable, which secret, and why.
#[derive(Debug, thiserror::Error)]
#[error("secretEnvironment.{variable}: could not read the {reference}: {problem}")]
pub struct SecretError {
    /// The variable.
    pub variable: String,
    /// The secret, as [`SecretRef::describe`] names it.
    pub reference: String,
    /// Why.
    #[source]
    pub problem: SecretProblem,
}

/// Why a secret could not be read; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SecretProblem {
    /// It is not there.
    #[error("it does not exist ({detail}); check the name or ARN and the region")]
    Missing {
        /// AWS's words.
        detail: String,
    },
    /// The runner may not read it.
    #[error("access denied ({detail}); the runner's role needs {permission} on it")]
    Denied {
        /// AWS's words.
        detail: String,
        /// What the role needs.
        permission: &'static str,
    },
    /// Another failure of the call.
    #[error(transparent)]
    Call(CallError),
    /// A Secrets Manager secret with binary data.
    #[error("it holds binary data, not a string; store the value as a secret string")]
    Binary,
    /// A parameter without a value.
    #[error("AWS returned no value for it")]
    NoValue,
    /// `jsonKey` on a secret that is not a JSON object.
    #[error("jsonKey {key:?} was given but the secret is not a JSON object")]
    NotJson {
        /// The key.
        key: String,
    },
    /// The key holds an object or a list.
    #[error("its key {key:?} is not a string, number or boolean")]
    NotScalar {
        /// The key.
        key: String,
    },
    /// The key is not there.
    #[error("it has no key {key:?}; check jsonKey (keys are case-sensitive)")]
    NoKey {
        /// The key.
        key: String,
    },
}

/// Reads every reference; variable name -> value. The error is the job's failure cause.
pub async fn read_all(
    clients: &SecretClients,
    references: &BTreeMap<String, SecretRef>,
) -> Result<BTreeMap<String, String>, SecretError> {
    let mut values = BTreeMap::new();
    for (name, reference) in references {
        let value = read(clients, reference)
            .await
            .map_err(|problem| SecretError {
                variable: name.clone(),
                reference: reference.describe(),
                problem,
            })?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

async fn read(clients: &SecretClients, reference: &SecretRef) -> Result<String, SecretProblem> {
    match reference {
        SecretRef::SecretsManager { id, json_key } => {
            let out = with_backoff(SECRET_DEADLINE, || async {
                clients
                    .secrets_manager
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| classify(&clients.figures, "GetSecretValue", e))
            })
            .await
            .map_err(|e| explain(e, "secretsmanager:GetSecretValue"))?;
            let text = out.secret_string.ok_or(SecretProblem::Binary)?;
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
                    .map_err(|e| classify(&clients.figures, "GetParameter", e))
            })
            .await
            .map_err(|e| explain(e, "ssm:GetParameter (and kms:Decrypt for a SecureString)"))?;
            out.parameter
                .and_then(|p| p.value)
                .ok_or(SecretProblem::NoValue)
        }
    }
}

/// The `key` of the JSON object in `text` (a string as it is, a number or boolean as text).
fn json_value(text: &str, key: &str) -> Result<String, SecretProblem> {
    let key_owned = || key.to_string();
    let object: Value =
        serde_json::from_str(text).map_err(|_| SecretProblem::NotJson { key: key_owned() })?;
    match object.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        Some(_) => Err(SecretProblem::NotScalar { key: key_owned() }),
        None => Err(SecretProblem::NoKey { key: key_owned() }),
    }
}

fn explain(e: CallError, permission: &'static str) -> SecretProblem {
    match e.class {
        ErrorClass::Missing => SecretProblem::Missing { detail: e.message },
        ErrorClass::Denied => SecretProblem::Denied {
            detail: e.message,
            permission,
        },
        _ => SecretProblem::Call(e),
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
                .to_string()
                .contains("no key")
        );
        assert!(
            json_value(secret, "nested")
                .unwrap_err()
                .to_string()
                .contains("not a string")
        );
        let e = json_value("plain-text-pw", "password")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a JSON object"), "{e}");
        assert!(!e.contains("plain-text-pw"), "the value never shows: {e}");
    }

    #[test]
    fn a_missing_or_denied_secret_says_so_and_names_the_permission() {
        let e = |class| CallError {
            operation: "GetSecretValue",
            class,
            message: "detail".into(),
            source: None,
        };
        assert!(matches!(
            explain(e(ErrorClass::Missing), "secretsmanager:GetSecretValue"),
            SecretProblem::Missing { .. }
        ));
        assert!(matches!(
            explain(e(ErrorClass::Denied), "ssm:GetParameter"),
            SecretProblem::Denied {
                permission: "ssm:GetParameter",
                ..
            }
        ));
        assert!(matches!(
            explain(e(ErrorClass::Transient), "ssm:GetParameter"),
            SecretProblem::Call(_)
        ));
    }
}
