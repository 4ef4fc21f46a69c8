//! What CloudTrail shows of a job's role session: its name (step and execution) and its tags
//! (execution, step, queue), cut to what STS accepts. Pure; nothing to cancel.

/// Longest role session name STS accepts.
const SESSION_NAME_MAX: usize = 64;
/// Longest session tag value STS accepts.
const TAG_VALUE_MAX: usize = 256;

/// Session tag with the execution ARN (usable as `aws:PrincipalTag/AttiniExecution`).
pub const TAG_EXECUTION: &str = "AttiniExecution";
/// Session tag with the step name.
pub const TAG_STEP: &str = "AttiniStep";
/// Session tag with the queue's name.
pub const TAG_QUEUE: &str = "AttiniQueue";

/// The role session name: `<step>@<execution name>`, in STS's characters (`[\w+=,.@-]`, others
/// become `_`) and at most 64 of them; `attini-runner-job` when neither is known.
pub fn session_name(step: Option<&str>, execution: Option<&str>) -> String {
    let execution = execution.map(|arn| arn.rsplit(':').next().unwrap_or(arn));
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let name = match (step, execution) {
        (Some(step), Some(exec)) => {
            let step: String = clean(step).chars().take(24).collect();
            format!("{step}@{}", clean(exec))
        }
        (Some(one), None) | (None, Some(one)) => clean(one),
        (None, None) => String::new(),
    };
    let name: String = name.chars().take(SESSION_NAME_MAX).collect();
    if name.len() < 2 {
        "attini-runner-job".to_string()
    } else {
        name
    }
}

/// The session tags: execution, step and queue, each only when known, values in STS's
/// characters (letters, digits, spaces and `_.:/=+-@`; others become `_`), at most 256.
pub fn session_tags(
    step: Option<&str>,
    execution: Option<&str>,
    queue: Option<&str>,
) -> Vec<(String, String)> {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(TAG_VALUE_MAX)
            .collect()
    };
    [
        (TAG_EXECUTION, execution),
        (TAG_STEP, step),
        (TAG_QUEUE, queue),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        let value = value.filter(|v| !v.is_empty())?;
        Some((key.to_string(), clean(value)))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:states:eu-west-1:123456789012:execution:deploy:run-42";

    #[test]
    fn the_session_name_says_which_step_of_which_execution() {
        assert_eq!(
            session_name(Some("Migrate DB"), Some(ARN)),
            "Migrate_DB@run-42"
        );
        assert_eq!(session_name(None, Some(ARN)), "run-42");
        assert_eq!(session_name(Some("S"), None), "attini-runner-job");
        // STS takes names of two characters or more.
        assert_eq!(session_name(Some("ab"), None), "ab");
        assert_eq!(session_name(None, None), "attini-runner-job");
        let long = session_name(Some(&"s".repeat(100)), Some(&"e".repeat(100)));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with(&format!("{}@e", "s".repeat(24))));
    }

    #[test]
    fn tags_carry_execution_step_and_queue_in_sts_characters() {
        let tags = session_tags(Some("Deploy (eu)"), Some(ARN), Some("jobs.fifo"));
        assert_eq!(
            tags,
            vec![
                (TAG_EXECUTION.to_string(), ARN.to_string()),
                (TAG_STEP.to_string(), "Deploy _eu_".to_string()),
                (TAG_QUEUE.to_string(), "jobs.fifo".to_string()),
            ]
        );
        assert!(session_tags(None, None, Some("")).is_empty());
    }
}
