//! Step Functions task tokens, as the worker's [`TaskTokens`]: `SendTaskSuccess`,
//! `SendTaskFailure`, `SendTaskHeartbeat`. Each call is one request; retries are the
//! worker's. Dropping a call cancels it.

use std::sync::Arc;

use super::error::classify;
use crate::metrics::Figures;
use crate::worker::{CallError, TaskTokens};

/// Task tokens answered through the Step Functions API.
#[derive(Debug, Clone)]
pub struct SfnTokens {
    sfn: aws_sdk_sfn::Client,
    figures: Arc<Figures>,
}

impl SfnTokens {
    /// Tokens answered with `sfn`, failures counted in `figures`.
    pub fn new(sfn: aws_sdk_sfn::Client, figures: Arc<Figures>) -> Self {
        SfnTokens { sfn, figures }
    }
}

impl TaskTokens for SfnTokens {
    async fn succeed(&self, token: &str, output: &str) -> Result<(), CallError> {
        self.sfn
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&self.figures, "SendTaskSuccess", e))
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), CallError> {
        self.sfn
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&self.figures, "SendTaskFailure", e))
    }

    async fn heartbeat(&self, token: &str) -> Result<(), CallError> {
        self.sfn
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&self.figures, "SendTaskHeartbeat", e))
    }
}
