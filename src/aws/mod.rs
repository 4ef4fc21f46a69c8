//! Everything that speaks AWS, implementing the worker's and the engine's traits with the SDK:
//! [`sqs`] (the worker's `Queue`), [`sfn`] (its `TaskTokens`), [`s3`] (distributions, log
//! objects, artifacts), [`dynamodb`] (the Attini tables), [`ecs`] (container metadata),
//! [`ec2`] (the terminate hook), and [`error`] (SDK errors into the worker's classes).
//!
//! This file is the one place AWS clients are configured, each built on its first use
//! ([`lazy::Lazy`]): aws-config's default chain (ECS container
//! credentials in production), the region from the environment, and the endpoint overrides
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` that the SDK honours, which is how tests
//! and emulators are reached. Building clients does no I/O worth cancelling.

pub mod dynamodb;
pub mod ec2;
pub mod ecs;
pub mod ecs_agent;
pub mod error;
pub mod group_commit;
pub mod history;
pub mod lazy;
pub mod lock_table;
pub mod s3;
pub mod s3_log;
pub mod s3_versions;
pub mod secrets;
pub mod sfn;
pub mod sqs;

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Figures;
use lazy::Lazy;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

/// How long a call to AWS may take, so that none waits without a bound. A call that runs out
/// of time fails as a transient error, which the caller's retry handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    /// Establishing a connection (`ATTINI_AWS_CONNECT_TIMEOUT`, default 5 s).
    pub connect: Duration,
    /// One HTTP attempt, up to the response headers (`ATTINI_AWS_ATTEMPT_TIMEOUT`, default
    /// 20 s); a long-poll receive gets its wait time plus [`RECEIVE_MARGIN`] instead.
    pub attempt: Duration,
    /// One call with the SDK's own retries (`ATTINI_AWS_OPERATION_TIMEOUT`, default 60 s).
    pub operation: Duration,
}

/// What a long-poll receive's attempt may take beyond its wait time.
pub const RECEIVE_MARGIN: Duration = Duration::from_secs(10);

impl Default for AwsTimeouts {
    fn default() -> Self {
        AwsTimeouts {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(20),
            operation: Duration::from_secs(60),
        }
    }
}

impl AwsTimeouts {
    /// The SDK's form of these timeouts.
    pub fn config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// How the AWS clients are built; from the settings ([`crate::config::Settings::aws`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsConfig {
    /// The region to use when the SDK's own chain finds none (`AWS_REGION` and
    /// `AWS_DEFAULT_REGION` unset): `ATTINI_AWS_REGION`.
    pub region: Option<String>,
    /// Address S3 by path (an endpoint override points at an emulator on localhost, where
    /// bucket names cannot be host names).
    pub path_style: bool,
    /// Where EC2 is reached (`AWS_ENDPOINT_URL_EC2`, else `AWS_ENDPOINT_URL`); `None`: AWS.
    pub ec2_endpoint: Option<String>,
    /// The timeouts of every call.
    pub timeouts: AwsTimeouts,
}

/// The AWS clients the runner uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Job queue.
    pub sqs: Lazy<aws_sdk_sqs::Client>,
    /// Distributions, job logs, artifacts.
    pub s3: Lazy<aws_sdk_s3::Client>,
    /// Stack outputs and events (`command-mode`, the `sam` kind, `logs --stack`).
    pub cloudformation: Lazy<aws_sdk_cloudformation::Client>,
    /// The runner's log group (`attini-runner logs`).
    pub logs: Lazy<aws_sdk_cloudwatchlogs::Client>,
    /// Resource-state and deploy-data tables (Attini mode).
    pub dynamodb: Lazy<aws_sdk_dynamodb::Client>,
    /// Task tokens.
    pub sfn: Lazy<aws_sdk_sfn::Client>,
    /// Secret references of jobs (Secrets Manager, SSM Parameter Store).
    pub secrets: secrets::SecretClients,
    /// The shared configuration (region, credentials) for signed calls made by hand.
    pub config: aws_config::SdkConfig,
    /// The timeouts every client has.
    pub timeouts: AwsTimeouts,
    /// Where EC2 is reached; `None`: AWS.
    pub ec2_endpoint: Option<String>,
    /// Where failed calls are counted (the runner's figures).
    pub figures: Arc<Figures>,
}

impl Clients {
    /// Loads the SDK's configuration (its own chain reads credentials, region and endpoint
    /// overrides) with what `aws` adds.
    /// Failed calls are counted in `figures`.
    pub async fn load(aws: &AwsConfig, figures: Arc<Figures>) -> Clients {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).timeout_config(aws.timeouts.config());
        if let Some(region) = aws.region.clone() {
            loader = loader.region(aws_config::Region::new(region));
        }
        let config = loader.load().await;
        let mut clients = Self::from_config(config, aws.path_style, aws.timeouts, figures);
        clients.ec2_endpoint = aws.ec2_endpoint.clone();
        clients
    }

    /// Clients for an AWS-compatible emulator at `endpoint` (for example
    /// `http://127.0.0.1:4566`), with the emulators' root key `test`, whatever the environment
    /// says.
    pub async fn for_endpoint(endpoint: &str, region: &str, timeouts: AwsTimeouts) -> Clients {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts.config())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "emulator",
            ))
            .load()
            .await;
        Self::from_config(config, true, timeouts, Arc::default())
    }

    fn from_config(
        config: aws_config::SdkConfig,
        path_style: bool,
        timeouts: AwsTimeouts,
        figures: Arc<Figures>,
    ) -> Clients {
        // A function pointer each (no capture): path style is the one S3 setting of ours.
        let s3: fn(&aws_config::SdkConfig) -> aws_sdk_s3::Client = if path_style {
            |config| s3_client(config, true)
        } else {
            |config| s3_client(config, false)
        };
        Clients {
            sqs: Lazy::new(&config, aws_sdk_sqs::Client::new),
            s3: Lazy::new(&config, s3),
            cloudformation: Lazy::new(&config, aws_sdk_cloudformation::Client::new),
            logs: Lazy::new(&config, aws_sdk_cloudwatchlogs::Client::new),
            dynamodb: Lazy::new(&config, aws_sdk_dynamodb::Client::new),
            sfn: Lazy::new(&config, aws_sdk_sfn::Client::new),
            secrets: secrets::SecretClients {
                secrets_manager: Lazy::new(&config, aws_sdk_secretsmanager::Client::new),
                ssm: Lazy::new(&config, aws_sdk_ssm::Client::new),
                figures: figures.clone(),
            },
            config,
            timeouts,
            ec2_endpoint: None,
            figures,
        }
    }
}

/// The S3 client of `config`, addressing buckets by path when `path_style`.
fn s3_client(config: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build(),
    )
}
