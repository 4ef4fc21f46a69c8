//! Secret redaction for everything a job shows the outside world: log lines, the failure
//! cause and the output sent to Step Functions. Pure string work; nothing to cancel.
//!
//! Redacted are: the values of a job's `secretEnvironment` (each line of a multi-line value
//! on its own, since logs are matched line by line), the runner's own AWS secret key and
//! session token when they are in its environment (the engine adds them, from the settings),
//! and anything shaped like an AWS access key id (`AKIA`/`ASIA` + 16 upper-case letters or
//! digits).

use serde_json::Value;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Secrets shorter than this many bytes are not redacted: masking every `a` or `1` would make
/// logs unreadable. The engine warns about such values when a job starts.
pub const MIN_SECRET_LEN: usize = 4;

/// Environment variables of the runner whose values are always redacted.
pub const RUNNER_SECRETS: [&str; 2] = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// Secret values held in a configuration, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// The values.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
}

impl From<Vec<String>> for Secrets {
    fn from(values: Vec<String>) -> Self {
        Secrets(values)
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

/// Replaces known secrets in text. Cheap to clone; build one per job.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for the given secret values (a job's, the runner's own credentials).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .map(str::to_string)
            .flat_map(|v| {
                let lines: Vec<String> = v.lines().map(str::to_string).collect();
                std::iter::once(v).chain(lines)
            })
            .map(|v| v.trim_end_matches('\r').to_string())
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret and access key id replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        mask_access_key_ids(&out)
    }

    /// True when [`Redactor::redact`] would change `text` (a secret, or what may be an access
    /// key id); cheap: substring searches only.
    pub fn finds(&self, text: &str) -> bool {
        // memchr's searches use the CPU's vector instructions; `str::contains` does not.
        static KEY_IDS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
            std::sync::LazyLock::new(|| [b"AKIA", b"ASIA"].map(memchr::memmem::Finder::new));
        let bytes = text.as_bytes();
        KEY_IDS.iter().any(|f| f.find(bytes).is_some())
            || self
                .secrets
                .iter()
                .any(|s| memchr::memmem::find(bytes, s.as_bytes()).is_some())
    }

    /// Bytes past a cut that a secret starting before it could still cover: the longest
    /// secret, or an access key id.
    pub fn reach(&self) -> usize {
        self.secrets
            .first()
            .map_or(0, String::len)
            .max(ACCESS_KEY_LEN)
    }

    /// A place to cut `bytes` (text split into bounded pieces) such that no secret or access
    /// key id is cut in two, on a UTF-8 boundary: at or before `at`, or, when a secret longer
    /// than the piece starts at 0, right after it (that piece is longer, and masked whole).
    /// `bytes` must hold at least [`Redactor::reach`] bytes past `at`, or all there is.
    pub fn safe_cut(&self, bytes: &[u8], at: usize) -> usize {
        let mut cut = at.min(bytes.len());
        loop {
            let spanning = self
                .secrets
                .iter()
                .map(|s| (s.as_bytes(), s.len()))
                // An access key id is known by its prefix and covers ACCESS_KEY_LEN bytes.
                .chain([b"AKIA", b"ASIA"].map(|prefix| (prefix.as_slice(), ACCESS_KEY_LEN)))
                .filter_map(|(needle, len)| {
                    let from = cut.saturating_sub(len - 1);
                    // Starting at or after `from`, a needle ends past the cut.
                    (from..cut)
                        .find(|&p| bytes[p..].starts_with(needle))
                        .map(|p| (p, len))
                })
                .min_by_key(|&(start, len)| (start, std::cmp::Reverse(len)));
            match spanning {
                Some((start, _)) if start > 0 => cut = start,
                // A secret longer than the piece: cut after it instead (its end is a UTF-8
                // boundary, the secret being text).
                Some((_, len)) => return len.min(bytes.len()),
                None => break,
            }
        }
        while cut > 0 && cut < bytes.len() && (bytes[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        cut
    }

    /// A JSON value with every string (and object key) redacted.
    pub fn redact_json(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(&s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.redact(&k), self.redact_json(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Length of an AWS access key id.
const ACCESS_KEY_LEN: usize = 20;

/// Masks `AKIA…`/`ASIA…` access key ids (20 characters, upper-case letters and digits).
fn mask_access_key_ids(text: &str) -> String {
    const LEN: usize = ACCESS_KEY_LEN;
    let bytes = text.as_bytes();
    if !text.contains("AKIA") && !text.contains("ASIA") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i + LEN <= bytes.len() {
        let window = &bytes[i..i + LEN];
        let prefix_ok = window.starts_with(b"AKIA") || window.starts_with(b"ASIA");
        let body_ok = window[4..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let before_ok = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let after_ok = bytes
            .get(i + LEN)
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        if prefix_ok && body_ok && before_ok && after_ok {
            // Byte indices are on ASCII characters here, so they are char boundaries.
            out.push_str(&text[copied..i]);
            out.push_str(MASK);
            i += LEN;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_values_longest_first_and_each_line_of_multiline_values() {
        let r = Redactor::new(["hunter22", "hunter2222", "line-one\nline-two"]);
        assert_eq!(r.redact("pw=hunter2222 and hunter22"), "pw=*** and ***");
        assert_eq!(r.redact("got line-two only"), "got *** only");
    }

    #[test]
    fn short_values_are_not_masked() {
        let r = Redactor::new(["abc"]);
        assert_eq!(r.redact("abc"), "abc");
    }

    #[test]
    fn masks_access_key_ids_but_not_longer_words() {
        let r = Redactor::new([]);
        assert_eq!(r.redact("key AKIAIOSFODNN7EXAMPLE end"), "key *** end");
        assert_eq!(r.redact("ASIAIOSFODNN7EXAMPLEX"), "ASIAIOSFODNN7EXAMPLEX");
        assert_eq!(r.redact("é AKIAIOSFODNN7EXAMPLE"), "é ***");
        // Session keys (ASIA) alone, at the very start, two in a row, and a longer word later.
        assert_eq!(r.redact("ASIAIOSFODNN7EXAMPLE"), "***");
        assert_eq!(
            r.redact("AKIAIOSFODNN7EXAMPLE,ASIAIOSFODNN7EXAMPLF AKIAIOSFODNN7EXAMPLEXX"),
            "***,*** AKIAIOSFODNN7EXAMPLEXX"
        );
        assert_eq!(
            r.redact(
                "a long text before the key AKIAIOSFODNN7EXAMPLE and one more AKIAIOSFODNN7EXAMPLG"
            ),
            "a long text before the key *** and one more ***"
        );
    }

    #[test]
    fn cuts_never_fall_inside_a_secret_or_a_key_id() {
        let r = Redactor::new(["my-long-secret-value"]);
        let text = b"0123456789my-long-secret-value and AKIAIOSFODNN7EXAMPLE end";
        // Cutting at 15 would split the secret (it starts at 10): the cut moves to 10.
        assert_eq!(r.safe_cut(text, 15), 10);
        // Inside the key id (it starts at 35): the cut moves to its start.
        assert_eq!(r.safe_cut(text, 40), 35);
        // Between them nothing moves; nor at the very end of the secret (10 + 20).
        assert_eq!(r.safe_cut(text, 32), 32);
        assert_eq!(r.safe_cut(text, 30), 30);
        assert_eq!(r.safe_cut(text, 29), 10);
        // A secret at the very start that is longer than the piece: cut after it, so that
        // it is masked whole (cut where asked, it was printed in two halves).
        assert_eq!(r.safe_cut(b"my-long-secret-value and more", 5), 20);
        // Never inside a UTF-8 character.
        assert_eq!(Redactor::new([]).safe_cut("aé".as_bytes(), 2), 1);
        // The ends: all of it, and nothing of output that is not UTF-8 at all.
        assert_eq!(Redactor::new([]).safe_cut(b"abc", 3), 3);
        assert_eq!(Redactor::new([]).safe_cut(b"abc", 9), 3);
        assert_eq!(Redactor::new([]).safe_cut(&[0x80, 0x80], 0), 0);
        assert_eq!(r.reach(), 20);
        // A secret of four bytes, the length of a key id's prefix, spans only its own four.
        let short = Redactor::new(["pw42"]);
        assert_eq!(short.safe_cut(b"0123pw42 and more", 10), 10);
        assert_eq!(short.safe_cut(b"0123pw42 and more", 6), 4);
    }

    /// `finds` is the cheap test that spares clean lines a copy: false on them, true where
    /// `redact` would change something.
    #[test]
    fn finds_says_whether_redact_would_change_the_text() {
        let r = Redactor::new(["s3cr3t!"]);
        for text in ["a clean line", "key AKIAIOSFODNN7EXAMPLE", "x s3cr3t! y"] {
            assert_eq!(r.finds(text), r.redact(text) != text, "{text}");
        }
    }

    #[test]
    fn secrets_show_their_count_and_never_their_values() {
        let secrets = Secrets::from(vec!["hunter22".to_string(), "s3cr3t!".to_string()]);
        assert_eq!(format!("{secrets:?}"), "Secrets(2 values)");
    }

    #[test]
    fn redacts_inside_json_strings_and_keys() {
        let r = Redactor::new(["s3cr3t!"]);
        let v = serde_json::json!({"a": ["x s3cr3t! y", 1], "s3cr3t!": true});
        assert_eq!(
            r.redact_json(v),
            serde_json::json!({"a": ["x *** y", 1], "***": true})
        );
    }
}
