//! Shell words for the commands the job kinds generate ([`super::cdk`], [`super::sam`]):
//! every value from the job is quoted, flags are joined with their values. Pure; nothing to
//! cancel.

/// `value` as one shell word.
pub fn quote(value: &str) -> String {
    // Invariant: only a NUL byte makes quoting fail, and the kinds reject job values with NUL
    // before quoting them (`has_nul`).
    shlex::try_quote(value)
        .map(|q| q.into_owned())
        .unwrap_or_default()
}

/// `flag <value>` for each value.
pub fn many(flag: &str, values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{flag} {}", quote(v)))
        .collect()
}

/// `flag <value>` when there is a value.
pub fn one(flag: &str, value: &Option<String>) -> Vec<String> {
    value
        .iter()
        .map(|v| format!("{flag} {}", quote(v)))
        .collect()
}

/// The parts joined by spaces, in order.
pub fn join(parts: Vec<Vec<String>>) -> String {
    parts.concat().join(" ")
}

/// Whether any of the values holds a NUL character (no shell word can).
pub fn has_nul<'a>(values: impl IntoIterator<Item = &'a String>) -> bool {
    values.into_iter().any(|v| v.contains('\0'))
}

/// The app's or project's folder: `./` when blank, absolute paths made relative to the
/// distribution (CONTRACT.md 9.1).
pub fn project_path(path: Option<&str>) -> String {
    match path.map(str::trim) {
        None | Some("") => "./".to_string(),
        Some(path) if path.starts_with('/') => format!(".{path}"),
        Some(path) => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_and_paths_made_relative() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(
            many("--x", &["1".into(), "it's".into()]),
            ["--x 1", "--x \"it's\""]
        );
        assert_eq!(one("--y", &None), Vec::<String>::new());
        assert_eq!(
            join(vec![vec!["a".into()], vec![], vec!["b".into()]]),
            "a b"
        );
        assert!(has_nul(&["x\0".to_string()]));
        assert_eq!(project_path(None), "./");
        assert_eq!(project_path(Some(" ")), "./");
        assert_eq!(project_path(Some("/infra")), "./infra");
        assert_eq!(project_path(Some("app")), "app");
    }
}
