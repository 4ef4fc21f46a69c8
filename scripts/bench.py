"""Throughput of the runner against a minimal loop, both on the same local emulator.

The emulator's round trips are the floor no runner can beat, so the figure that matters is the
ratio: seconds per job through `attini-runner serve` divided by seconds per job through a loop
that only receives each message and answers its token. Prints figures; asserts nothing.

    python3 scripts/bench.py target/release/attini-runner [JOBS]
"""
import json, os, socket, subprocess, sys, time

import boto3

RUNNER, JOBS = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
endpoint = f"http://127.0.0.1:{port}"
emulator = subprocess.Popen(["ministack"], env=dict(os.environ, BIND_HOST="127.0.0.1", GATEWAY_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
        break
    except OSError:
        time.sleep(0.05)
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
sqs, sfn = boto3.client("sqs", **kw), boto3.client("stepfunctions", **kw)


def machine(name):
    queue = sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"})["QueueUrl"]
    body = {"taskToken.$": "$$.Task.Token", "commands": ["echo '{\"ok\":true}' > $ATTINI_OUTPUT"]}
    definition = {"StartAt": "Run", "States": {"Run": {"Type": "Task", "End": True,
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageGroupId.$": "$$.Execution.Name",
                       "MessageDeduplicationId.$": "$$.Execution.Name", "MessageBody": body}}}}
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::000000000000:role/bench")["stateMachineArn"]
    return queue, arn


def run(name, consume):
    queue, arn = machine(name)
    start = time.monotonic()
    executions = [sfn.start_execution(stateMachineArn=arn, name=f"{name}-{i}", input="{}")["executionArn"] for i in range(JOBS)]
    consumer = consume(queue)
    for e in executions:
        while sfn.describe_execution(executionArn=e)["status"] == "RUNNING":
            time.sleep(0.02)
    elapsed = time.monotonic() - start
    consumer()
    return elapsed


def minimal(queue):
    """Receive, answer, delete: what any runner must do at least."""
    done = 0
    while done < JOBS:
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            sfn.send_task_success(taskToken=json.loads(m["Body"])["taskToken"], output='{"ok":true}')
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            done += 1
    return lambda: None


def runner(queue):
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION="us-east-1", ATTINI_MAX_CONCURRENT_JOBS="5",
               ATTINI_OPS_ADDR="127.0.0.1:0")  # never collide with a runner already on the default port
    proc = subprocess.Popen([RUNNER, "serve", "--queue-url", queue], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return lambda: (proc.terminate(), proc.wait())


try:
    base = run("minimal", minimal)
    ours = run("runner", runner)
    print(f"jobs per run:                 {JOBS}")
    print(f"minimal loop (1 at a time):   {base:.2f} s, {1000 * base / JOBS:.1f} ms per job")
    print(f"attini-runner serve (5 slots): {ours:.2f} s, {1000 * ours / JOBS:.1f} ms per job")
    print(f"ratio runner / minimal:       {ours / base:.2f}")
finally:
    emulator.terminate()
