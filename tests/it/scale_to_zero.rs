//! Scale to zero in the service stack, read as CloudFormation sees it: `MinTasks` may be 0;
//! then one task is added whenever jobs wait and none runs (target tracking scales in
//! proportion to running tasks, so from zero it never would), from the queue's and the
//! service's own metrics; the tasks-below-minimum alarm exists only when tasks are kept.

use serde_json::{Value, json};

use crate::least_privilege::decoded;

fn resource<'t>(template: &'t Value, name: &str) -> &'t Value {
    let found = &template["Resources"][name];
    assert!(!found.is_null(), "no {name}");
    found
}

#[test]
fn with_min_tasks_zero_a_waiting_job_starts_a_task() {
    let t = decoded("cloudformation/runner-service.yaml");
    assert_eq!(t["Parameters"]["MinTasks"]["MinValue"], 0);
    assert_eq!(
        t["Conditions"]["ScalesToZero"],
        json!({"Fn::Equals": [{"Ref": "MinTasks"}, 0]})
    );

    let policy = resource(&t, "ScaleFromZeroPolicy");
    assert_eq!(policy["Condition"], "ScalesToZero");
    let p = &policy["Properties"];
    assert_eq!(p["PolicyType"], "StepScaling");
    assert_eq!(p["ScalingTargetId"], json!({"Ref": "ScalableTarget"}));
    let steps = &p["StepScalingPolicyConfiguration"];
    assert_eq!(steps["AdjustmentType"], "ChangeInCapacity");
    assert_eq!(
        steps["StepAdjustments"],
        json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}])
    );

    let alarm = resource(&t, "ScaleFromZeroAlarm");
    assert_eq!(alarm["Condition"], "ScalesToZero");
    let a = &alarm["Properties"];
    assert_eq!(a["AlarmActions"], json!([{"Ref": "ScaleFromZeroPolicy"}]));
    assert_eq!(a["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    assert_eq!(a["Threshold"], 1);
    let metrics: Vec<&Value> = a["Metrics"].as_array().unwrap().iter().collect();
    let by_id = |id: &str| *metrics.iter().find(|m| m["Id"] == id).unwrap();
    let visible = &by_id("visible")["MetricStat"]["Metric"];
    assert_eq!(visible["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(
        visible["Dimensions"][0]["Value"],
        json!({"Fn::GetAtt": ["JobQueue", "QueueName"]})
    );
    let tasks = &by_id("tasks")["MetricStat"]["Metric"];
    assert_eq!(tasks["MetricName"], "RunningTaskCount");
    assert_eq!(
        tasks["Dimensions"][1]["Value"],
        json!({"Fn::GetAtt": ["Service", "Name"]})
    );
    // Zero tasks report no RunningTaskCount at all: missing is zero.
    assert_eq!(
        by_id("waitingWithoutRunners")["Expression"],
        "IF(FILL(tasks, 0) < 1 AND visible > 0, 1, 0)"
    );

    // Below a minimum of zero nothing can be: that alarm is for kept tasks only.
    assert_eq!(
        resource(&t, "TasksBelowMinimumAlarm")["Condition"],
        "KeepsTasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_deploys_with_min_tasks_zero() {
    use crate::emulator::Emulator;
    use crate::world::World;
    let world = World::on(Emulator::start_kind("moto").await).await;
    let stack = world.unique("zero");
    let parameters = [
        "Image=attini-runner:test",
        "VpcId=VPC",
        "Subnets=SUBNET",
        "DistributionBucket=artifacts",
        "Architecture=ARM64",
        "MinTasks=0",
    ];
    crate::stacks::create_stack(
        &world.emulator,
        "cloudformation/runner-service.yaml",
        &stack,
        &parameters,
    )
    .await;
    // moto names the queue, the service and the table among the resources it made (not the
    // scaling policies and alarms): the stack as a whole deployed, with MinCapacity 0 accepted.
    let resources = world
        .clients
        .cloudformation
        .describe_stack_resources()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = resources
        .stack_resources()
        .iter()
        .filter_map(|r| r.logical_resource_id())
        .collect();
    for wanted in ["JobQueue", "Service", "LockTable"] {
        assert!(names.contains(&wanted), "{wanted} not in {names:?}");
    }
}
