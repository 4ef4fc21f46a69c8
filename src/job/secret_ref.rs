//! Secret references in `secretEnvironment`: instead of a value, a variable may name where the
//! runner reads it in AWS modes, so that the value is never in the state machine's definition,
//! input or history:
//!
//! ```json
//! {"DB_PASSWORD": {"secretsManager": "prod/db", "jsonKey": "password"},
//!  "API_TOKEN": {"ssmParameter": "/app/api-token"}}
//! ```
//!
//! `secretsManager` is a secret's name or ARN (its `AWSCURRENT` string; with `jsonKey`, that
//! key of the JSON object it holds); `ssmParameter` a parameter's name or ARN (decrypted when
//! it is a `SecureString`). Parsing only; the reads are `aws::secrets`. Pure; nothing to
//! cancel.

use serde_json::Value;

use super::ParseError;

/// Where the value of one secret variable is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A Secrets Manager secret (name or ARN), or one key of the JSON object it holds.
    SecretsManager {
        /// Name or ARN.
        id: String,
        /// Key of the JSON object in the secret string.
        json_key: Option<String>,
    },
    /// A Systems Manager parameter (name or ARN), decrypted.
    SsmParameter {
        /// Name or ARN.
        name: String,
    },
}

impl SecretRef {
    /// The reference from the object at `path`; errors say what a reference looks like.
    pub fn parse(value: &Value, path: &str) -> Result<SecretRef, ParseError> {
        let shape = "give {\"secretsManager\": \"<name or ARN>\", \"jsonKey\": \"<key>\"} (jsonKey optional) or {\"ssmParameter\": \"<name>\"}";
        let Value::Object(map) = value else {
            return Err(ParseError::field(
                path,
                format!("must be a value or a reference: {shape}"),
            ));
        };
        let text = |key: &str| -> Result<Option<String>, ParseError> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(ParseError::field(
                    format!("{path}.{key}"),
                    "must be a non-empty string",
                )),
            }
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !["secretsManager", "jsonKey", "ssmParameter"].contains(&k.as_str()))
        {
            return Err(ParseError::field(
                format!("{path}.{unknown}"),
                format!("is not a field of a secret reference: {shape}"),
            ));
        }
        match (text("secretsManager")?, text("ssmParameter")?) {
            (Some(id), None) => Ok(SecretRef::SecretsManager {
                id,
                json_key: text("jsonKey")?,
            }),
            (None, Some(name)) if !map.contains_key("jsonKey") => {
                Ok(SecretRef::SsmParameter { name })
            }
            (None, Some(_)) => Err(ParseError::field(
                format!("{path}.jsonKey"),
                "is only for a secretsManager reference",
            )),
            _ => Err(ParseError::field(
                path,
                format!("must name exactly one source: {shape}"),
            )),
        }
    }

    /// Where the value comes from, for messages (never the value).
    pub fn describe(&self) -> String {
        match self {
            SecretRef::SecretsManager { id, json_key: None } => {
                format!("Secrets Manager secret {id:?}")
            }
            SecretRef::SecretsManager {
                id,
                json_key: Some(key),
            } => format!("key {key:?} of Secrets Manager secret {id:?}"),
            SecretRef::SsmParameter { name } => format!("SSM parameter {name:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_kinds_parse() {
        assert_eq!(
            SecretRef::parse(&json!({"secretsManager": "db", "jsonKey": "password"}), "p"),
            Ok(SecretRef::SecretsManager {
                id: "db".into(),
                json_key: Some("password".into())
            })
        );
        assert_eq!(
            SecretRef::parse(&json!({"ssmParameter": "/app/token"}), "p"),
            Ok(SecretRef::SsmParameter {
                name: "/app/token".into()
            })
        );
    }

    #[test]
    fn a_bad_reference_says_what_one_looks_like() {
        for (value, field, says) in [
            (json!({}), "p", "exactly one source"),
            (
                json!({"secretsManager": "a", "ssmParameter": "b"}),
                "p",
                "exactly one source",
            ),
            (
                json!({"secretManager": "a"}),
                "p.secretManager",
                "not a field",
            ),
            (
                json!({"secretsManager": ""}),
                "p.secretsManager",
                "non-empty",
            ),
            (
                json!({"ssmParameter": "a", "jsonKey": "k"}),
                "p.jsonKey",
                "only for",
            ),
            (json!(["a"]), "p", "a value or a reference"),
        ] {
            let e = SecretRef::parse(&value, "p").unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(says), "{value}: {e}");
        }
    }

    /// Messages name where a value comes from, each kind in its own words.
    #[test]
    fn a_reference_is_described_by_its_source() {
        let described = |value| SecretRef::parse(&value, "p").unwrap().describe();
        assert_eq!(
            described(json!({"secretsManager": "db"})),
            "Secrets Manager secret \"db\""
        );
        assert_eq!(
            described(json!({"secretsManager": "db", "jsonKey": "password"})),
            "key \"password\" of Secrets Manager secret \"db\""
        );
        assert_eq!(
            described(json!({"ssmParameter": "/app/token"})),
            "SSM parameter \"/app/token\""
        );
    }
}
