//! Field helpers shared by both job formats: the parse error type, string coercion with
//! a named path, and the checks every command list and variable map must pass.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a message body is not a job. Every variant names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON at all.
    #[error("the job is not valid JSON: {detail}")]
    NotJson {
        /// The JSON parser's message, with line and column.
        detail: String,
    },
    /// The body is JSON but not an object.
    #[error("the job must be a JSON object, got {found}")]
    NotObject {
        /// JSON type found instead.
        found: &'static str,
    },
    /// The body is larger than a queue message may be.
    #[error("the job is {bytes} bytes; the limit is {limit} bytes (the SQS message size limit)")]
    TooLarge {
        /// Size of the body in bytes.
        bytes: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A field is missing, has the wrong type or a bad value.
    #[error("field `{path}` {problem}")]
    Field {
        /// Dotted path of the field, e.g. `Properties.Commands[2]`.
        path: String,
        /// What is wrong with it and what was expected.
        problem: String,
    },
}

impl ParseError {
    /// A [`ParseError::Field`] for `path`.
    pub fn field(path: impl Into<String>, problem: impl Into<String>) -> Self {
        ParseError::Field {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// The JSON type name of a value, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A scalar as a string, the way the Attini dispatcher turns numbers and booleans into
/// strings. Nested values, null and NUL characters are errors naming `path`.
pub fn scalar_string(value: &Value, path: &str) -> Result<String, ParseError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(ParseError::field(
                path,
                format!(
                    "must be a string (numbers and booleans are accepted), got {}",
                    type_name(other)
                ),
            ));
        }
    };
    if text.contains('\0') {
        return Err(ParseError::field(
            path,
            "contains a NUL character, which cannot be passed to a process",
        ));
    }
    Ok(text)
}

/// A required string field of an object.
pub fn required_str(parent: &Value, parent_path: &str, key: &str) -> Result<String, ParseError> {
    let path = join(parent_path, key);
    match parent.get(key) {
        None | Some(Value::Null) => Err(ParseError::field(path, "is missing")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ParseError::field(
            path,
            format!("must be a string, got {}", type_name(other)),
        )),
    }
}

/// `parent.key` as a path.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A list of commands: an array of scalars, each turned into a string.
pub fn commands(value: &Value, path: &str) -> Result<Vec<String>, ParseError> {
    let Value::Array(items) = value else {
        return Err(ParseError::field(
            path,
            format!("must be a list of commands, got {}", type_name(value)),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| scalar_string(item, &format!("{path}[{i}]")))
        .collect()
}

/// A map of environment variables: an object of scalars (null means an empty map).
/// Names must be usable as environment variable names.
pub fn environment(value: &Value, path: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let map = match value {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(map) => map,
        other => {
            return Err(ParseError::field(
                path,
                format!(
                    "must be an object of NAME: value pairs, got {}",
                    type_name(other)
                ),
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let entry_path = format!("{path}.{name}");
        check_variable_name(name, &entry_path)?;
        out.insert(name.clone(), scalar_string(value, &entry_path)?);
    }
    Ok(out)
}

/// An environment variable name must be non-empty and free of `=` and NUL; bash can only
/// expand names made of letters, digits and `_` that do not start with a digit, so those
/// are required too.
pub fn check_variable_name(name: &str, path: &str) -> Result<(), ParseError> {
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(first) if first == '_' || first.is_ascii_alphabetic() => {
            chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ParseError::field(
            path,
            format!(
                "is not a valid variable name ({name:?}): use letters, digits and `_`, not starting with a digit"
            ),
        ))
    }
}

/// A relative directory inside the workspace: no absolute path, no `..`.
pub fn relative_dir(value: &str, path: &str) -> Result<String, ParseError> {
    let p = std::path::Path::new(value);
    let escapes = p.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if value.is_empty() || escapes || value.contains('\0') {
        return Err(ParseError::field(
            path,
            format!(
                "must be a relative directory inside the distribution without `..`, got {value:?}"
            ),
        ));
    }
    Ok(value.to_string())
}

/// The tool caches a job may name, and their folders under `HOME`.
pub const CACHE_NAMES: &[(&str, &str)] = &[
    ("npm", ".npm"),
    ("yarn", ".cache/yarn"),
    ("pip", ".cache/pip"),
    ("maven", ".m2"),
    ("gradle", ".gradle"),
    ("go", "go/pkg/mod"),
    ("cargo", ".cargo/registry"),
];

/// A tool cache: a name of [`CACHE_NAMES`], or a folder under `HOME` (`~/.cache/x` or
/// `.cache/x`: relative, no `..`).
pub fn cache_folder(value: &str, path: &str) -> Result<String, ParseError> {
    if let Some((_, folder)) = CACHE_NAMES.iter().find(|(name, _)| *name == value) {
        return Ok(folder.to_string());
    }
    let folder = value.strip_prefix("~/").unwrap_or(value);
    let p = std::path::Path::new(folder);
    let inside = !folder.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        let names: Vec<&str> = CACHE_NAMES.iter().map(|(n, _)| *n).collect();
        return Err(ParseError::field(
            path,
            format!(
                "must be one of {} or a folder under the home directory such as \"~/.cache/tool\", got {value:?}",
                names.join(", ")
            ),
        ));
    }
    Ok(folder.trim_end_matches('/').to_string())
}

/// A workspace cache: `path` a folder of the working directory and `key_files` one or more
/// files of it, all relative without `..` (`field` names the entry in errors).
pub fn workspace_cache(
    path: String,
    key_files: Vec<String>,
    field: &str,
) -> Result<super::WorkspaceCache, ParseError> {
    let inside = |value: &str| {
        !value.is_empty()
            && !value.contains('\0')
            && std::path::Path::new(value)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
    };
    if !inside(&path) {
        return Err(ParseError::field(
            format!("{field}.path"),
            format!(
                "must be a folder inside the working directory, such as \"node_modules\" (relative, no `.` or `..`), got {path:?}"
            ),
        ));
    }
    if key_files.is_empty() {
        return Err(ParseError::field(
            format!("{field}.keyFiles"),
            "must name at least one file whose contents key the folder, such as [\"package-lock.json\"]",
        ));
    }
    if let Some(bad) = (key_files.iter()).find(|f| std::path::Path::new(f).starts_with(&path)) {
        return Err(ParseError::field(
            format!("{field}.keyFiles"),
            format!(
                "must be outside the folder they key ({path:?}), which is moved away between jobs, got {bad:?}"
            ),
        ));
    }
    if let Some(bad) = key_files.iter().find(|f| !inside(f)) {
        return Err(ParseError::field(
            format!("{field}.keyFiles"),
            format!(
                "must be files inside the working directory (relative, no `.` or `..`), got {bad:?}"
            ),
        ));
    }
    Ok(super::WorkspaceCache {
        path: path.trim_end_matches('/').to_string(),
        key_files,
    })
}

/// Longest lock name.
pub const MAX_LOCK_CHARS: usize = 200;

/// A lock name: 1 to [`MAX_LOCK_CHARS`] letters, digits and `_ . : / @ -`.
pub fn lock_name(value: &str, path: &str) -> Result<String, ParseError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_.:/@-".contains(c);
    if value.is_empty() || value.chars().count() > MAX_LOCK_CHARS || !value.chars().all(ok) {
        return Err(ParseError::field(
            path,
            format!(
                "must be 1 to {MAX_LOCK_CHARS} letters, digits and _ . : / @ - (for example \"db-orders\"), got {value:?}"
            ),
        ));
    }
    Ok(value.to_string())
}

/// An IAM role ARN (`arn:<partition>:iam::<12-digit account>:role/<path/name>`), trimmed.
pub fn role_arn(value: &str, path: &str) -> Result<String, ParseError> {
    let value = value.trim();
    let valid = (|| {
        let rest = value.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(':')?;
        let rest = rest.strip_prefix("iam::")?;
        let (account, name) = rest.split_once(":role/")?;
        let name_ok = !name.is_empty()
            && name.len() <= 512
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
        (partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && name_ok)
            .then_some(())
    })();
    match valid {
        Some(()) => Ok(value.to_string()),
        None => Err(ParseError::field(
            path,
            format!(
                "must be an IAM role ARN such as arn:aws:iam::123456789012:role/deploy-dev, got {value:?}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each part of a role ARN is checked on its own: the partition, the twelve digits of the
    /// account, and the role name's length and characters.
    #[test]
    fn a_role_arn_is_refused_for_any_one_wrong_part() {
        for good in [
            "arn:aws:iam::123456789012:role/deploy-dev",
            " arn:aws-cn:iam::123456789012:role/path/to+deploy=,.@_-1 ",
        ] {
            assert_eq!(role_arn(good, "role").unwrap(), good.trim());
        }
        let long = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(513));
        for bad in [
            "arn:aws:iam::123456789012:role/",
            long.as_str(),
            "arn:aws:iam::123456789012:role/bad name",
            "arn:gcp:iam::123456789012:role/deploy",
            "arn:aws:iam::12345678901:role/deploy",
            "arn:aws:iam::12345678901x:role/deploy",
            "arn:aws:iam::123456789012:user/deploy",
        ] {
            let err = role_arn(bad, "role").expect_err(bad).to_string();
            assert!(err.contains("must be an IAM role ARN"), "{bad}: {err}");
        }
        let longest = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(512));
        assert!(role_arn(&longest, "role").is_ok());
    }
}
