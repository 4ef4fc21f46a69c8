//! Tasks read from hand-made histories: steps named through the event chain, parallel
//! branches kept apart, every way a task ends, and execution ARNs checked for shape.

use aws_sdk_sfn::primitives::DateTime;
use aws_sdk_sfn::types::{
    StateEnteredEventDetails, TaskFailedEventDetails, TaskScheduledEventDetails,
    TaskSucceededEventDetails, TaskTimedOutEventDetails,
};

use super::*;

const SQS: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

fn event(
    id: i64,
    previous: i64,
    kind: HistoryEventType,
) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
    HistoryEvent::builder()
        .id(id)
        .previous_event_id(previous)
        .timestamp(DateTime::from_millis(1_000 * id))
        .r#type(kind)
}

fn entered(id: i64, previous: i64, name: &str) -> HistoryEvent {
    event(id, previous, HistoryEventType::TaskStateEntered)
        .state_entered_event_details(
            StateEnteredEventDetails::builder()
                .name(name)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn scheduled(id: i64, previous: i64, parameters: &str) -> HistoryEvent {
    let details = TaskScheduledEventDetails::builder()
        .resource_type("states")
        .resource(SQS)
        .region("eu-west-1")
        .parameters(parameters)
        .build()
        .unwrap();
    event(id, previous, HistoryEventType::TaskScheduled)
        .task_scheduled_event_details(details)
        .build()
        .unwrap()
}

fn failed(id: i64, previous: i64, error: &str, cause: Option<&str>) -> HistoryEvent {
    let details = TaskFailedEventDetails::builder()
        .resource_type("states")
        .resource(SQS)
        .error(error)
        .set_cause(cause.map(str::to_string))
        .build()
        .unwrap();
    event(id, previous, HistoryEventType::TaskFailed)
        .task_failed_event_details(details)
        .build()
        .unwrap()
}

fn succeeded(id: i64, previous: i64, output: &str) -> HistoryEvent {
    let details = TaskSucceededEventDetails::builder()
        .resource_type("states")
        .resource(SQS)
        .output(output)
        .build()
        .unwrap();
    event(id, previous, HistoryEventType::TaskSucceeded)
        .task_succeeded_event_details(details)
        .build()
        .unwrap()
}

#[test]
fn a_task_has_its_state_name_parameters_times_and_ending() {
    let events = vec![
        event(1, 0, HistoryEventType::ExecutionStarted)
            .build()
            .unwrap(),
        entered(2, 1, "Migrate"),
        scheduled(3, 2, r#"{"MessageBody":{"taskToken":"t"}}"#),
        event(4, 3, HistoryEventType::TaskStarted).build().unwrap(),
        failed(5, 4, "Job.Failed", Some("exit 3")),
    ];
    let tasks = tasks(&events);
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(task.step, "Migrate");
    assert_eq!(task.resource, SQS);
    assert_eq!(task.parameters, r#"{"MessageBody":{"taskToken":"t"}}"#);
    assert_eq!((task.scheduled_ms, task.ended_ms), (3_000, Some(5_000)));
    assert_eq!(
        task.ending,
        Some(Ending::Failed {
            error: "Job.Failed".into(),
            cause: Some("exit 3".into())
        })
    );
}

#[test]
fn parallel_branches_end_their_own_tasks() {
    // Two branches entered and scheduled side by side; the second one ends first.
    let events = vec![
        entered(2, 1, "A"),
        entered(3, 1, "B"),
        scheduled(4, 2, "{}"),
        scheduled(5, 3, "{}"),
        event(6, 5, HistoryEventType::TaskStarted).build().unwrap(),
        event(7, 4, HistoryEventType::TaskStarted).build().unwrap(),
        succeeded(8, 6, r#""b""#),
        failed(9, 7, "E", None),
    ];
    let tasks = tasks(&events);
    let named: Vec<(&str, Option<&Ending>)> = tasks
        .iter()
        .map(|t| (t.step.as_str(), t.ending.as_ref()))
        .collect();
    assert_eq!(
        named,
        vec![
            (
                "A",
                Some(&Ending::Failed {
                    error: "E".into(),
                    cause: None
                })
            ),
            (
                "B",
                Some(&Ending::Succeeded {
                    output: r#""b""#.into()
                })
            ),
        ]
    );
}

#[test]
fn a_retried_step_is_one_task_per_attempt_and_a_timeout_is_a_failure() {
    let timed_out = event(6, 5, HistoryEventType::TaskTimedOut)
        .task_timed_out_event_details(
            TaskTimedOutEventDetails::builder()
                .resource_type("states")
                .resource(SQS)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let events = vec![
        entered(2, 1, "Run"),
        scheduled(3, 2, "{}"),
        failed(4, 3, "Job.Failed", None),
        scheduled(5, 4, "{}"),
        timed_out,
        // Ends nothing: no open task left, nothing up its chain.
        failed(7, 99, "Late", None),
    ];
    let tasks = tasks(&events);
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|t| t.step == "Run"));
    assert_eq!(
        tasks[1].ending,
        Some(Ending::Failed {
            error: "States.Timeout".into(),
            cause: None
        })
    );
    assert_eq!(tasks[1].ended_ms, Some(6_000));
}

#[test]
fn a_resource_recorded_in_two_parts_is_the_states_resource() {
    let details = TaskScheduledEventDetails::builder()
        .resource_type("sqs")
        .resource("sendMessage.waitForTaskToken")
        .region("eu-west-1")
        .parameters("{}")
        .build()
        .unwrap();
    let event = event(3, 2, HistoryEventType::TaskScheduled)
        .task_scheduled_event_details(details)
        .build()
        .unwrap();
    assert_eq!(tasks(&[event])[0].resource, SQS);
}

#[test]
fn a_task_still_running_has_no_ending() {
    let tasks = tasks(&[entered(2, 1, "Run"), scheduled(3, 2, "{}")]);
    assert_eq!(tasks[0].ending, None);
    assert_eq!(tasks[0].ended_ms, None);
}

#[test]
fn execution_arns_are_checked_for_shape() {
    let arn = ExecutionArn::parse(" arn:aws:states:eu-west-1:123456789012:execution:Plan:run-7 ")
        .unwrap();
    assert_eq!(
        arn.arn,
        "arn:aws:states:eu-west-1:123456789012:execution:Plan:run-7"
    );
    assert_eq!(
        (arn.region.as_str(), arn.name.as_str()),
        ("eu-west-1", "run-7")
    );
    assert!(ExecutionArn::parse("arn:aws:states:us-east-1:1:express:M:e").is_ok());
    let why = |arn: &str| ExecutionArn::parse(arn).unwrap_err().to_string();
    assert!(why("run-7").contains("8 parts"), "{}", why("run-7"));
    assert!(why("arn:aws:lambda:eu-west-1:1:execution:M:e").contains("not `states`"));
    let machine = why("arn:aws:states:eu-west-1:1:stateMachine:Plan:x");
    assert!(machine.contains("names a `stateMachine`"), "{machine}");
    assert!(why("arn:aws:states::1:execution:M:e").contains("region or execution name is empty"));
    assert!(why("arn:aws:states:r:1:execution:M:").contains("is empty"));
    assert!(why("arm:aws:states:r:1:execution:M:e").contains("8 parts"));
}

#[test]
fn an_ended_execution_is_not_running() {
    let history = |status: &str| History {
        status: status.into(),
        started_ms: 0,
        tasks: Vec::new(),
    };
    assert!(!history("RUNNING").ended());
    assert!(!history("PENDING_REDRIVE").ended());
    assert!(history("FAILED").ended());
    assert!(history("SUCCEEDED").ended());
}
