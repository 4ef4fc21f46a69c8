//! The benchmarks' reference loop (scripts/bench.py): receive up to ten messages, answer each
//! task token, delete each message, one message at a time, until JOBS are answered. It is the
//! least any runner must do per job, in the runner's language and with the runner's SDK.
//!
//! ```text
//! minimal-loop QUEUE_URL JOBS [--job]
//! ```
//!
//! With `--job` it also runs the job the way the runner does, and nothing more: the message's
//! `commands` written to a script, `bash SCRIPT` with `ATTINI_OUTPUT` set, its stdout and stderr
//! read to the end through one pipe, and the output file read back as the answer. That is the
//! fair floor of the handoff-to-answer figure (B1): the difference from it is the runner's own
//! part. Without `--job` the answer is `{"ok":true}` (the burst figures, B3 and B8).
//!
//! The endpoint, region and credentials come from the environment (`AWS_ENDPOINT_URL`...).
//! Errors end the loop with a message; it is a benchmark tool, not a runner.

use std::process::Stdio;

use aws_config::BehaviorVersion;
use tokio::io::AsyncReadExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (queue, jobs) = match args.as_slice() {
        [queue, jobs, ..] => (queue.clone(), jobs.parse::<usize>()?),
        _ => return Err("usage: minimal-loop QUEUE_URL JOBS [--job]".into()),
    };
    let run_jobs = args.iter().any(|arg| arg == "--job");
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let sfn = aws_sdk_sfn::Client::new(&config);
    let work = std::env::temp_dir().join(format!("minimal-loop-{}", std::process::id()));
    tokio::fs::create_dir_all(&work).await?;
    let mut done = 0;
    while done < jobs {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        for message in received.messages() {
            let body: serde_json::Value = serde_json::from_str(message.body().unwrap_or("{}"))?;
            let token = body["taskToken"]
                .as_str()
                .ok_or("a message without a taskToken")?;
            let output = if run_jobs {
                run(&work, &body).await?
            } else {
                r#"{"ok":true}"#.to_string()
            };
            sfn.send_task_success()
                .task_token(token)
                .output(output)
                .send()
                .await?;
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await?;
            done += 1;
        }
    }
    tokio::fs::remove_dir_all(&work).await?;
    Ok(())
}

/// Runs the job's `commands` in bash as the runner does and returns its output file.
async fn run(work: &std::path::Path, body: &serde_json::Value) -> Result<String, Error> {
    let commands: Vec<&str> = body["commands"]
        .as_array()
        .map(|commands| commands.iter().filter_map(|c| c.as_str()).collect())
        .unwrap_or_default();
    let script = work.join("script.sh");
    let output = work.join("output");
    tokio::fs::write(&script, commands.join("\n")).await?;
    let (mut reader, writer) = std::io::pipe()?;
    let mut child = tokio::process::Command::new("bash")
        .arg(&script)
        .current_dir(work)
        .env("ATTINI_OUTPUT", &output)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .spawn()?;
    let drained = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut lines).map(|_| lines)
    });
    let status = child.wait().await?;
    drained.await??;
    if !status.success() {
        return Err(format!("the job failed: {status}").into());
    }
    let mut answer = String::new();
    tokio::fs::File::open(&output)
        .await?
        .read_to_string(&mut answer)
        .await?;
    Ok(answer)
}
