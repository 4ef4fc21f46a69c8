//! The library's floors (README "Architecture"): each module uses only the floors below it.
//! Reads the source and fails naming the file, the line and the import that runs upwards.

use std::path::Path;

/// Which top-level modules code in `floor` may name with `crate::`.
fn allowed(floor: &str) -> Option<&'static [&'static str]> {
    Some(match floor {
        "calls" => &[],
        "metrics" => &["metrics"],
        "job" => &["job"],
        "engine" => &["job", "engine", "metrics", "calls"],
        "worker" => &["job", "engine", "worker", "metrics", "calls"],
        "aws" => &["job", "engine", "worker", "aws", "metrics", "calls"],
        "ops" => &["engine", "worker", "metrics", "ops"],
        "credentials" => &[
            "job",
            "engine",
            "worker",
            "aws",
            "metrics",
            "calls",
            "credentials",
        ],
        "config" => &["job", "engine", "worker", "aws", "credentials", "config"],
        "harden" => &[],
        "signals" => &[],
        "telemetry" => &["config"],
        _ => return None,
    })
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules named as `crate::<name>` in one line of code.
fn named_modules(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .map(|(at, m)| {
            line[at + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn no_module_imports_a_higher_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let floor = top.trim_end_matches(".rs");
        let Some(allowed) = allowed(floor) else {
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for module in named_modules(line) {
                if !module.is_empty() && module != "VERSION" && !allowed.contains(&module.as_str())
                {
                    upward.push(format!(
                        "{}:{}: crate::{module}",
                        relative.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 30,
        "only {checked} files checked: did the layout move?"
    );
    assert!(
        upward.is_empty(),
        "imports running up a floor:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    assert_eq!(named_modules("use crate::aws::sqs::SqsQueue;"), ["aws"]);
    assert!(!allowed("engine").unwrap().contains(&"worker"));
}
