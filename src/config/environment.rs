//! The process environment, read once ([`Environment::capture`]) and then passed down: the
//! only place outside `config/` allowed to look at it is this snapshot (clippy's
//! `disallowed-methods` holds the rest of the code to that). Values are never shown in `Debug`.
//! Pure; nothing to cancel.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A snapshot of the process environment (variables whose name and value are UTF-8).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Arc<BTreeMap<String, String>>,
}

impl Environment {
    /// The process environment now.
    #[allow(clippy::disallowed_methods)] // The one read of the whole environment.
    pub fn capture() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Environment {
            vars: Arc::new(vars),
        }
    }

    /// An environment of these variables (tests).
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment {
            vars: Arc::new(vars),
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value of `name`, if set and not blank.
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    }

    /// The names of every variable.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_blank_ones_count_as_unset_and_debug_shows_names_only() {
        let env = Environment::of([("A", "1"), ("BLANK", "  "), ("SECRET", "s3cr3t")]);
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.get("NONE"), None);
        assert_eq!(env.non_empty("A").as_deref(), Some("1"));
        assert_eq!(env.non_empty("BLANK"), None);
        assert_eq!(env.non_empty("NONE"), None);
        assert_eq!(env.get("BLANK"), Some("  "));
        assert_eq!(env.names().collect::<Vec<_>>(), ["A", "BLANK", "SECRET"]);
        let shown = format!("{env:?}");
        assert_eq!(shown, r#"{"A", "BLANK", "SECRET"}"#);
        assert!(!shown.contains("s3cr3t"));
    }
}
