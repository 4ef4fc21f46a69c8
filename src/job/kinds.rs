//! Job kinds other than plain commands (`"kind"` in the native format). Each kind turns its
//! `properties` into the command list the Attini dispatcher would generate for the same step.
//! Pure; nothing to cancel.

use serde_json::Value;

use super::fields::ParseError;

/// The commands for `kind` with `properties`.
pub fn commands(kind: &str, _properties: Option<&Value>) -> Result<Vec<String>, ParseError> {
    Err(ParseError::field(
        "kind",
        format!(
            "{kind:?} is not supported by this runner version; give the commands as `commands` instead"
        ),
    ))
}
