//! The catalogue of settings: each one's variable, default, accepted range and meaning, in
//! one place ([`ALL`]). The parsers in `config/mod.rs` and the README table read them from
//! here. Constants only; nothing to cancel.

use std::time::Duration;

/// One setting: its variable, what it accepts and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// What it accepts and its default.
    pub kind: Kind,
    /// One sentence for the README.
    pub meaning: &'static str,
}

/// What a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in `min..=max` (`u64::MAX`: no upper bound) of `unit`; `default` when
    /// unset or empty (`None`: off unless set).
    Number {
        /// Used when unset.
        default: Option<u64>,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
        /// What the number counts, for the README (`seconds`, `bytes`, `jobs`).
        unit: &'static str,
    },
    /// Free text; `default` says what applies when unset, for the README.
    Text {
        /// What applies when unset.
        default: &'static str,
    },
}

/// Longest timeout or TTL accepted: a year, in seconds.
pub const MAX_SECONDS: u64 = 31_536_000;

const fn seconds(default: Option<u64>, min: u64, max: u64) -> Kind {
    Kind::Number {
        default,
        min,
        max,
        unit: "seconds",
    }
}

const fn text(default: &'static str) -> Kind {
    Kind::Text { default }
}

/// `ATTINI_JOB_TIMEOUT`.
pub const JOB_TIMEOUT: Setting = Setting {
    name: "ATTINI_JOB_TIMEOUT",
    kind: seconds(Some(3600), 1, MAX_SECONDS),
    meaning: "Default job timeout (a job's `timeoutSeconds` wins).",
};
/// `ATTINI_KILL_GRACE`.
pub const KILL_GRACE: Setting = Setting {
    name: "ATTINI_KILL_GRACE",
    kind: seconds(Some(10), 0, 3600),
    meaning: "Time between SIGTERM and SIGKILL when a job is ended.",
};
/// `ATTINI_WORKSPACE_TIMEOUT`.
pub const WORKSPACE_TIMEOUT: Setting = Setting {
    name: "ATTINI_WORKSPACE_TIMEOUT",
    kind: seconds(Some(900), 10, 86400),
    meaning: "Longest a job's workspace may take to prepare (download, unpack and copy its distribution), before and apart from the job timeout; then the job fails with Runner.Distribution and nothing of it ran.",
};
/// `ATTINI_WORK_DIR`.
pub const WORK_DIR: Setting = Setting {
    name: "ATTINI_WORK_DIR",
    kind: text("`$TMPDIR/attini-runner`"),
    meaning: "Where job directories and the distribution cache live (a fresh `run-<id>` folder per process, removed at exit).",
};
/// `ATTINI_CDK_CLI`.
pub const CDK_CLI: Setting = Setting {
    name: "ATTINI_CDK_CLI",
    kind: text("`cdk` on the job's PATH"),
    meaning: "The AWS CDK CLI `cdk` jobs run: a path, or a program name found on the job's PATH. A job of kind `cdk` fails before it starts when it is not found.",
};
/// `ATTINI_SAM_CLI`.
pub const SAM_CLI: Setting = Setting {
    name: "ATTINI_SAM_CLI",
    kind: text("`sam` on the job's PATH"),
    meaning: "The AWS SAM CLI `sam` jobs run: a path, or a program name found on the job's PATH. A job of kind `sam` fails before it starts when it is not found.",
};
/// `ATTINI_DISTRIBUTION_MAX_BYTES`.
pub const DISTRIBUTION_MAX_BYTES: Setting = Setting {
    name: "ATTINI_DISTRIBUTION_MAX_BYTES",
    kind: Kind::Number {
        default: Some(4 << 30),
        min: 1,
        max: u64::MAX,
        unit: "bytes",
    },
    meaning: "Most content one distribution may unpack to (and, plus a margin, download).",
};
/// `ATTINI_DISTRIBUTION_CACHE_BYTES`.
pub const DISTRIBUTION_CACHE_BYTES: Setting = Setting {
    name: "ATTINI_DISTRIBUTION_CACHE_BYTES",
    kind: Kind::Number {
        default: Some(2 << 30),
        min: 0,
        max: u64::MAX,
        unit: "bytes",
    },
    meaning: "Extracted distributions kept for later jobs, with one ready copy each for the next job (both count; least recently used go first); 0: none, each job extracts its own (local mode always does). Whatever the budget, every download, unpacking and copy first checks the volume's free space (less what writes in progress hold): short of room, unused entries are evicted, else the job fails with `Runner.Disk` naming the space needed and free.",
};
/// `ATTINI_TOOL_CACHE_BYTES`.
pub const TOOL_CACHE_BYTES: Setting = Setting {
    name: "ATTINI_TOOL_CACHE_BYTES",
    kind: Kind::Number {
        default: Some(4 << 30),
        min: 0,
        max: u64::MAX,
        unit: "bytes",
    },
    meaning: "Bytes of tool caches (jobs' `caches`: `~/.npm`, `~/.m2`, ...) and workspace caches (`workspaceCaches`: `node_modules`, ...) kept between jobs, in homes of their own, one job per home at a time; the least recently used home goes first. 0: jobs naming caches run with the runner's `HOME`, and workspace caches are not kept.",
};
/// `ATTINI_TOOL_CACHE_SEED`.
pub const TOOL_CACHE_SEED: Setting = Setting {
    name: "ATTINI_TOOL_CACHE_SEED",
    kind: text("none"),
    meaning: "`s3://BUCKET/KEY` of a zip of cache folders under a home (`.npm/...`, `.m2/...`), unpacked into the first tool cache home when the runner starts (AWS modes), so that the first jobs naming those caches start warm; jobs naming caches wait for it (2 minutes at most), others never do. A seed that cannot be read or unpacked is a warning, and the caches start empty. Needs `s3:GetObject` on the object.",
};
/// `ATTINI_MAX_CONCURRENT_JOBS`.
pub const MAX_CONCURRENT_JOBS: Setting = Setting {
    name: "ATTINI_MAX_CONCURRENT_JOBS",
    kind: Kind::Number {
        default: Some(5),
        min: 1,
        max: 100,
        unit: "jobs",
    },
    meaning: "AWS modes: jobs run at once (`serve --max-jobs` wins).",
};
/// `ATTINI_RUNNER_IDLE_TTL`.
pub const IDLE_TTL: Setting = Setting {
    name: "ATTINI_RUNNER_IDLE_TTL",
    kind: seconds(None, 1, MAX_SECONDS),
    meaning: "AWS modes: exit after this long without jobs, counted from the end of the last one. Unset: 3600 in Attini mode, never in `serve` (`--idle-ttl` wins).",
};
/// `ATTINI_RECEIVE_WAIT`.
pub const RECEIVE_WAIT: Setting = Setting {
    name: "ATTINI_RECEIVE_WAIT",
    kind: seconds(Some(20), 1, 20),
    meaning: "AWS modes: longest wait of one `ReceiveMessage` long poll (SQS allows 20). A stop keeps the poll in flight to its end, so that a message SQS hands it meanwhile goes back to the queue at once rather than after its visibility timeout: an idle runner's stop takes up to this long. Lower: a quicker stop, at one more request every this many seconds while idle.",
};
/// The idle TTL of Attini mode when [`IDLE_TTL`] is unset (CONTRACT.md 3.3).
pub const ATTINI_IDLE_TTL_DEFAULT: Duration = Duration::from_secs(3600);
/// `ATTINI_DRAIN_GRACE`.
pub const DRAIN_GRACE: Setting = Setting {
    name: "ATTINI_DRAIN_GRACE",
    kind: seconds(None, 0, 3600),
    meaning: "AWS modes: time running jobs get to finish after SIGTERM/SIGINT. Unset: `ATTINI_STOP_TIMEOUT` less `ATTINI_KILL_GRACE` less 5 s for the log and the answer (105 s by default). A job expected to need more is interrupted at once (see Stopping).",
};
/// `ATTINI_STOP_TIMEOUT`.
pub const STOP_TIMEOUT: Setting = Setting {
    name: "ATTINI_STOP_TIMEOUT",
    kind: seconds(Some(120), 1, 3600),
    meaning: "AWS modes: the task's `stopTimeout`, the time ECS gives between SIGTERM and SIGKILL (Fargate and Fargate Spot: at most 120 s). Every job is answered before it.",
};
/// `ATTINI_REPORT_DENIED_RETRY`.
pub const REPORT_DENIED_RETRY: Setting = Setting {
    name: "ATTINI_REPORT_DENIED_RETRY",
    kind: seconds(Some(300), 0, 3600),
    meaning: "AWS modes: how long a report Step Functions denies (AccessDenied, a missing resource) is retried while IAM changes propagate; then its message is left for redelivery or the dead-letter queue, never deleted unanswered.",
};
/// `ATTINI_MAX_RUNNER_FAILURES`.
pub const MAX_RUNNER_FAILURES: Setting = Setting {
    name: "ATTINI_MAX_RUNNER_FAILURES",
    kind: Kind::Number {
        default: Some(5),
        min: 0,
        max: 1000,
        unit: "jobs",
    },
    meaning: "AWS modes: after this many jobs in a row fail on the runner's side (Runner.Distribution, Runner.Disk, Runner.Credentials, Runner.MissingTool, RuntimeError), the runner stops receiving, hands back what it holds, reports not ready and exits with status 3 so that ECS replaces it; a job's own failure resets the count; 0: never.",
};
/// `ATTINI_TASK_PROTECTION_MINUTES`.
pub const TASK_PROTECTION_MINUTES: Setting = Setting {
    name: "ATTINI_TASK_PROTECTION_MINUTES",
    kind: Kind::Number {
        default: Some(15),
        min: 1,
        max: 2880,
        unit: "minutes",
    },
    meaning: "`serve` on ECS (where `ECS_AGENT_URI` is set): while jobs run, the task is protected from scale-in for this long, renewed every third of it, and unprotected when idle.",
};
/// `ATTINI_TASK_PROTECTION_MAX_MINUTES`.
pub const TASK_PROTECTION_MAX_MINUTES: Setting = Setting {
    name: "ATTINI_TASK_PROTECTION_MAX_MINUTES",
    kind: Kind::Number {
        default: Some(60),
        min: 1,
        max: 2880,
        unit: "minutes",
    },
    meaning: "`serve` on ECS: the longest a task stays protected without being idle once. Past it the protection is not renewed (it lapses within `ATTINI_TASK_PROTECTION_MINUTES`), so that a deployment or scale-in can replace a task that is never idle; it protects again after the task was idle.",
};
/// `ATTINI_STARTUP_COMMANDS_TIMEOUT`.
pub const STARTUP_COMMANDS_TIMEOUT: Setting = Setting {
    name: "ATTINI_STARTUP_COMMANDS_TIMEOUT",
    kind: seconds(Some(3600), 1, MAX_SECONDS),
    meaning: "Attini mode: timeout of the runner's startup commands.",
};
/// `ATTINI_AWS_CONNECT_TIMEOUT`.
pub const AWS_CONNECT_TIMEOUT: Setting = Setting {
    name: "ATTINI_AWS_CONNECT_TIMEOUT",
    kind: seconds(Some(5), 1, 300),
    meaning: "AWS modes: time to establish a connection to AWS.",
};
/// `ATTINI_AWS_ATTEMPT_TIMEOUT`.
pub const AWS_ATTEMPT_TIMEOUT: Setting = Setting {
    name: "ATTINI_AWS_ATTEMPT_TIMEOUT",
    kind: seconds(Some(20), 1, 3600),
    meaning: "AWS modes: one attempt of an AWS call, to its response (a long-poll receive gets its wait time plus 10 s). A call that runs out of time is retried like any transient error.",
};
/// `ATTINI_AWS_OPERATION_TIMEOUT`.
pub const AWS_OPERATION_TIMEOUT: Setting = Setting {
    name: "ATTINI_AWS_OPERATION_TIMEOUT",
    kind: seconds(Some(60), 1, 3600),
    meaning: "AWS modes: one AWS call with the SDK's own retries.",
};
/// `ATTINI_QUEUE_URL`.
pub const QUEUE_URL: Setting = Setting {
    name: "ATTINI_QUEUE_URL",
    kind: text("required in AWS modes"),
    meaning: "The job queue (`serve --queue-url` wins).",
};
/// `ATTINI_DEPLOY_DATA_TABLE`.
pub const DEPLOY_DATA_TABLE: Setting = Setting {
    name: "ATTINI_DEPLOY_DATA_TABLE",
    kind: text("required in Attini mode"),
    meaning: "Attini mode: the deploy-data table (current executions).",
};
/// `ATTINI_RESOURCE_STATE_TABLE`.
pub const RESOURCE_STATE_TABLE: Setting = Setting {
    name: "ATTINI_RESOURCE_STATE_TABLE",
    kind: text("required in Attini mode"),
    meaning: "Attini mode: the resource-state table (the runner's item; CDK stacks).",
};
/// `ATTINI_RUNNER_RESOURCE_NAME`.
pub const RUNNER_RESOURCE_NAME: Setting = Setting {
    name: "ATTINI_RUNNER_RESOURCE_NAME",
    kind: text("required in Attini mode"),
    meaning: "Attini mode: the `name` of the runner's resource-state item.",
};
/// `ATTINI_CONFIGURATION_HASH`.
pub const CONFIGURATION_HASH: Setting = Setting {
    name: "ATTINI_CONFIGURATION_HASH",
    kind: text("0 (also when not a number)"),
    meaning: "Attini mode: jobs with another `taskConfigHashCode` are left for the runner started for them.",
};
/// `ATTINI_AWS_REGION`.
pub const AWS_REGION: Setting = Setting {
    name: "ATTINI_AWS_REGION",
    kind: text("none"),
    meaning: "The region when `AWS_REGION` is not set.",
};
/// `ATTINI_EC2_INSTANCE_ID`.
pub const EC2_INSTANCE_ID: Setting = Setting {
    name: "ATTINI_EC2_INSTANCE_ID",
    kind: text("none"),
    meaning: "Attini mode on EC2: the host terminated when the runner exits.",
};
/// `ATTINI_LOG_LEVEL`.
pub const LOG_LEVEL: Setting = Setting {
    name: "ATTINI_LOG_LEVEL",
    kind: text("`INFO`; `WARN` in local mode"),
    meaning: "`DEBUG`, `INFO`, `WARN`, `ERROR`, `OFF` or `ALL`; `RUST_LOG` (a tracing filter) wins when set.",
};

/// The settings a job's commands read themselves (`command-mode` in the `cdk` and `sam`
/// scripts, CONTRACT.md 8): passed to jobs with a role of their own, unlike every other
/// setting.
pub const FOR_JOBS: [&str; 2] = ["ATTINI_AWS_REGION", "ATTINI_RESOURCE_STATE_TABLE"];

/// `ATTINI_JOB_ROLE_ARN`.
pub const JOB_ROLE_ARN: Setting = Setting {
    name: "ATTINI_JOB_ROLE_ARN",
    kind: text("none: jobs without a `role` run with the runner's credentials"),
    meaning: "AWS modes: the IAM role jobs run as when they name no `role` (see Trust model). The runner's own credentials and settings are then withheld from them.",
};
/// `ATTINI_JOB_ROLE_SESSION_SECONDS`.
pub const JOB_ROLE_SESSION_SECONDS: Setting = Setting {
    name: "ATTINI_JOB_ROLE_SESSION_SECONDS",
    kind: seconds(Some(3600), 900, 43200),
    meaning: "Length of each job role session (STS caps a role-chained session, as on ECS, at 3600); the runner assumes the role again before it ends.",
};
/// `ATTINI_JOB_ROLE_REFRESH_SECONDS`.
pub const JOB_ROLE_REFRESH_SECONDS: Setting = Setting {
    name: "ATTINI_JOB_ROLE_REFRESH_SECONDS",
    kind: seconds(Some(300), 1, 43199),
    meaning: "A job's role credentials expiring within this are replaced before they are handed to it (less than the session length).",
};
/// `ATTINI_REFUSE_LITERAL_SECRETS`.
pub const REFUSE_LITERAL_SECRETS: Setting = Setting {
    name: "ATTINI_REFUSE_LITERAL_SECRETS",
    kind: text("`false`"),
    meaning: "AWS modes: `true` fails jobs whose `secretEnvironment` holds a value instead of a reference, so that no secret waits in a queue or dead-letter queue.",
};
/// `ATTINI_LOCK_TABLE`.
pub const LOCK_TABLE: Setting = Setting {
    name: "ATTINI_LOCK_TABLE",
    kind: text("none: jobs with a `lock` are refused"),
    meaning: "`serve`: the DynamoDB table of locks across runners (partition key `lock` S, sort key `ticket` N, TTL attribute `ttl`); the service stack makes it. Jobs naming one `lock` run one at a time, in arrival order, on every runner sharing it.",
};
/// `ATTINI_LOCK_LEASE`.
pub const LOCK_LEASE: Setting = Setting {
    name: "ATTINI_LOCK_LEASE",
    kind: seconds(Some(60), 5, 3600),
    meaning: "`serve`: the lease of a lock entry, renewed every quarter of it. A holder that cannot renew for three quarters of it ends its job; a dead runner's lock passes on within one lease and 2 s.",
};
/// `ATTINI_OPS_ADDR`.
pub const OPS_ADDR: Setting = Setting {
    name: "ATTINI_OPS_ADDR",
    kind: text("`127.0.0.1:9464`"),
    meaning: "AWS modes: `IP:port` of the ops server (`/livez`, `/readyz`, `/metrics`, `/jobs`); `off` disables it. Port 0 takes a free port (logged).",
};
/// `ATTINI_METRICS`.
pub const METRICS: Setting = Setting {
    name: "ATTINI_METRICS",
    kind: text("`off`"),
    meaning: "AWS modes: `emf` writes the metrics to stdout as CloudWatch Embedded Metric Format lines (namespace `AttiniRunner`) every `ATTINI_METRICS_INTERVAL`.",
};
/// `ATTINI_METRICS_INTERVAL`.
pub const METRICS_INTERVAL: Setting = Setting {
    name: "ATTINI_METRICS_INTERVAL",
    kind: seconds(Some(60), 1, 3600),
    meaning: "AWS modes with `ATTINI_METRICS=emf`: seconds between two sets of EMF lines (one more at exit).",
};

/// Every setting, in the README's order.
pub const ALL: &[Setting] = &[
    JOB_TIMEOUT,
    KILL_GRACE,
    WORKSPACE_TIMEOUT,
    WORK_DIR,
    CDK_CLI,
    SAM_CLI,
    DISTRIBUTION_MAX_BYTES,
    DISTRIBUTION_CACHE_BYTES,
    TOOL_CACHE_BYTES,
    TOOL_CACHE_SEED,
    MAX_CONCURRENT_JOBS,
    IDLE_TTL,
    RECEIVE_WAIT,
    DRAIN_GRACE,
    STOP_TIMEOUT,
    REPORT_DENIED_RETRY,
    MAX_RUNNER_FAILURES,
    TASK_PROTECTION_MINUTES,
    TASK_PROTECTION_MAX_MINUTES,
    STARTUP_COMMANDS_TIMEOUT,
    AWS_CONNECT_TIMEOUT,
    AWS_ATTEMPT_TIMEOUT,
    AWS_OPERATION_TIMEOUT,
    QUEUE_URL,
    DEPLOY_DATA_TABLE,
    RESOURCE_STATE_TABLE,
    RUNNER_RESOURCE_NAME,
    CONFIGURATION_HASH,
    AWS_REGION,
    EC2_INSTANCE_ID,
    LOG_LEVEL,
    JOB_ROLE_ARN,
    JOB_ROLE_SESSION_SECONDS,
    JOB_ROLE_REFRESH_SECONDS,
    REFUSE_LITERAL_SECRETS,
    LOCK_TABLE,
    LOCK_LEASE,
    OPS_ADDR,
    METRICS,
    METRICS_INTERVAL,
];
