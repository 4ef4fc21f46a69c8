//! Property tests (proptest) of the two parsers that face untrusted input: job messages and
//! distribution zips. Run more cases with `PROPTEST_CASES=20000 cargo test --test it properties`.

use std::path::Path;

use attini_runner::engine::distribution::extract::{ExtractLimits, extract};
use attini_runner::job;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

use crate::harness::{Entry, write_zip};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A job-shaped object: known keys with values of any type.
fn job_like() -> impl Strategy<Value = Value> {
    let keys = [
        "taskToken",
        "commands",
        "environment",
        "secretEnvironment",
        "input",
        "distribution",
        "workingDirectory",
        "timeoutSeconds",
        "heartbeatSeconds",
        "stepName",
        "kind",
        "Properties",
        "deploymentPlanExecutionMetadata",
        "deploymentOriginData",
        "taskConfigHashCode",
    ];
    prop::collection::vec((prop::sample::select(keys.to_vec()), any_json()), 0..6).prop_map(
        |pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
    )
}

/// A job that parses, with some of its fields replaced by values of any type: most cases
/// are near misses, some still parse.
fn near_jobs() -> impl Strategy<Value = Value> {
    let base = json!({
        "taskToken": "token-1", "commands": ["echo hi"], "environment": {"A": "1"},
        "workingDirectory": "sub", "timeoutSeconds": 30, "stepName": "Step"
    });
    prop::collection::vec((any::<prop::sample::Index>(), any_json()), 0..3).prop_map(move |edits| {
        let mut job = base.clone();
        let keys: Vec<String> = job.as_object().unwrap().keys().cloned().collect();
        for (index, value) in edits {
            job[index.get(&keys).as_str()] = value;
        }
        job
    })
}

/// Runs `property` over `strategy` for `cases` cases; returns how many cases took each side
/// (`true` from the property: the case parsed).
fn sides<S: Strategy>(
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) -> (u32, u32) {
    use std::cell::Cell;
    let (parsed, refused) = (Cell::new(0u32), Cell::new(0u32));
    // With the source file named, kept regression seeds (tests/proptest-regressions) run first.
    let config = ProptestConfig {
        source_file: Some(file!()),
        ..ProptestConfig::with_cases(cases)
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    runner
        .run(&strategy, |value| {
            let side = if property(value)? { &parsed } else { &refused };
            side.set(side.get() + 1);
            Ok(())
        })
        .unwrap();
    (parsed.get(), refused.get())
}

#[test]
fn any_text_is_a_job_or_an_error_that_says_what_is_wrong() {
    // Near jobs whole, near jobs cut anywhere, and text of any shape.
    let text = prop_oneof![
        near_jobs().prop_map(|job| job.to_string()),
        (near_jobs(), any::<prop::sample::Index>()).prop_map(|(job, cut)| {
            let text = job.to_string();
            let at = cut.index(text.len() + 1);
            text.get(..at).unwrap_or(&text).to_string()
        }),
        ".{0,200}",
    ];
    let (parsed, refused) = sides(512, text, |text| match job::parse(&text) {
        Ok(job) => {
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok_and(|v| v.is_object()));
            prop_assert!(!job.commands.is_empty());
            Ok(true)
        }
        Err(e) => {
            let message = e.to_string();
            prop_assert!(message.len() > 10, "a vague error: {message:?}");
            if let Some(token) = job::salvage_token(&text) {
                let value: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(value["taskToken"].as_str(), Some(token.as_str()));
            }
            Ok(false)
        }
    });
    eprintln!("text cases: {parsed} parsed, {refused} refused");
    assert!(
        parsed >= 5 && refused >= 100,
        "{parsed} parsed, {refused} refused"
    );
}

#[test]
fn parsed_jobs_keep_their_promises() {
    let values = prop_oneof![near_jobs(), job_like()];
    let (parsed, refused) = sides(512, values, |value| {
        let Ok(job) = job::parse(&value.to_string()) else {
            return Ok(false);
        };
        if job.format == job::JobFormat::Native {
            prop_assert!(!job.commands.is_empty());
            prop_assert!(job.token.as_deref().is_none_or(|t| !t.trim().is_empty()));
        }
        for name in job.environment.keys().chain(job.secret_environment.keys()) {
            prop_assert!(job::check_variable_name(name, "x").is_ok());
        }
        if let Some(dir) = &job.working_directory {
            prop_assert!(!Path::new(dir).is_absolute() && !dir.split('/').any(|p| p == ".."));
        }
        Ok(true)
    });
    eprintln!("job cases: {parsed} parsed, {refused} refused");
    assert!(
        parsed >= 50 && refused >= 50,
        "{parsed} parsed, {refused} refused"
    );
}

/// Entry names and link targets built from parts that attack paths.
fn hostile_entries() -> impl Strategy<Value = Vec<(bool, String, String)>> {
    let part = prop::sample::select(vec![
        "a", "b", "..", ".", "", "/", "\\", "c/..", "/tmp", "x.txt",
    ]);
    let path = prop::collection::vec(part, 1..5).prop_map(|parts| parts.join("/"));
    // Short names and relative targets make link chains (a -> ., b -> a/..) likely.
    let name = prop_oneof![1 => path.clone(), 3 => prop::sample::select(vec!["a", "b", "c/d"]).prop_map(String::from)];
    let target = prop_oneof![
        1 => path,
        3 => prop::sample::select(vec![".", "..", "a/..", "a/../..", "b/..", "c"]).prop_map(String::from),
    ];
    prop::collection::vec((any::<bool>(), name, target), 1..6)
}

#[test]
fn extraction_never_writes_outside_its_folder() {
    // Each case writes and extracts a zip: fewer cases by default, PROPTEST_CASES for more.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let (extracted, refused) = sides(cases, hostile_entries(), |entries| {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let zip = tmp.path().join("in.zip");
        let owned: Vec<Entry> = entries
            .iter()
            .map(|(link, name, target)| {
                if *link {
                    Entry::Link(name, target)
                } else {
                    Entry::File(name, b"data", 0o644)
                }
            })
            .collect();
        // The zip writer itself refuses some names; those cases prove nothing.
        let written = std::panic::catch_unwind(|| write_zip(&zip, &owned));
        prop_assume!(written.is_ok());
        let result = extract(&zip, &dest, ExtractLimits::default());
        // Nothing but the zip and the destination exists next to the destination.
        let mut siblings: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        siblings.sort();
        prop_assert_eq!(siblings, vec!["dest".to_string(), "in.zip".to_string()]);
        if result.is_ok() {
            let root = std::fs::canonicalize(&dest).unwrap();
            for entry in walk(&dest) {
                if let Ok(resolved) = std::fs::canonicalize(&entry) {
                    prop_assert!(
                        resolved.starts_with(&root),
                        "{} resolves to {}",
                        entry.display(),
                        resolved.display()
                    );
                }
            }
        }
        Ok(result.is_ok())
    });
    eprintln!("zip cases: {extracted} extracted, {refused} refused");
    assert!(
        extracted >= cases / 10 && refused >= cases / 10,
        "{extracted} extracted, {refused} refused"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        out.push(path.clone());
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}
