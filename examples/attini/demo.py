"""Attini mode on a local emulator, end to end: the tables, queue and artifact store an Attini
deployment has, a state machine that sends the dispatcher's message, an ECS metadata endpoint,
and the runner started exactly as the dispatcher starts it. Prints the execution's result and the
job log object the Attini CLI follows.

    python3 -m venv /tmp/demo-venv && /tmp/demo-venv/bin/pip install ministack==1.5.33 boto3==1.43.11
    BIND_HOST=127.0.0.1 GATEWAY_PORT=4566 /tmp/demo-venv/bin/ministack &
    cargo build --release
    /tmp/demo-venv/bin/python examples/attini/demo.py target/release/attini-runner
"""
import http.server, io, json, os, subprocess, sys, threading, time, zipfile

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
kw = dict(endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
sqs, s3, sfn, ddb = (boto3.client(s, **kw) for s in ("sqs", "s3", "stepfunctions", "dynamodb"))
stamp = str(int(time.time()))
TASK = f"arn:aws:ecs:us-east-1:000000000000:task/attini-default/{stamp}"
BUCKET, PREFIX = "attini-artifact-store-us-east-1-000000000000", f"dev/demo/{stamp}/distribution-origin"

# Tables, queue, artifact store and distribution, as an Attini deployment has them.
for table, hash_key, range_key, range_type in [("AttiniResourceStatesV1", "resourceType", "name", "S"),
                                               ("AttiniDeployDataV1", "deploymentName", "deploymentTime", "N")]:
    try:
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": hash_key, "AttributeType": "S"},
                                               {"AttributeName": range_key, "AttributeType": range_type}],
                         KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"},
                                    {"AttributeName": range_key, "KeyType": "RANGE"}])
    except ddb.exceptions.ResourceInUseException:
        pass
queue = sqs.create_queue(QueueName=f"AttiniRunnerQueueDemo{stamp}.fifo",
                         Attributes={"FifoQueue": "true", "VisibilityTimeout": "15"})["QueueUrl"]
s3.create_bucket(Bucket=BUCKET)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    info = zipfile.ZipInfo("deploy.sh")
    info.external_attr = 0o100755 << 16
    z.writestr(info, '#!/bin/bash\necho "deploying $ATTINI_DISTRIBUTION_NAME to $STAGE"\n'
                     'echo "{\\"deployed\\": \\"$ATTINI_STEP_NAME\\"}" > "$ATTINI_OUTPUT"\n')
s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/demo.zip", Body=buf.getvalue())
ddb.put_item(TableName="AttiniResourceStatesV1", Item={
    "resourceType": {"S": "Runner"}, "name": {"S": "demo-plan-Runner"}, "taskId": {"S": TASK},
    "started": {"BOOL": False}, "environment": {"S": "dev"}, "distributionName": {"S": "demo"},
    "startupCommands": {"L": [{"S": "echo startup commands run before any job"}]}})

# The step, sending what the Attini dispatcher sends.
body = {
    "output": {}, "Properties": {"Commands": ["./deploy.sh"], "Runner": "Runner", "Environment": {"STAGE": "dev"}},
    "deploymentPlanExecutionMetadata": {"retryCounter.$": "$$.State.RetryCount", "sfnToken.$": "$$.Task.Token",
        "stepName.$": "$$.State.Name", "executionArn.$": "$$.Execution.Id", "executionStartTime.$": "$$.Execution.StartTime"},
    "deploymentOriginData": {"distributionName": "demo", "deploymentTime": 1, "environment": "dev",
        "deploymentSource": {"deploymentSourcePrefix": PREFIX, "deploymentSourceBucket": BUCKET},
        "distributionId": stamp, "deploymentName": "dev-demo", "objectIdentifier": f"dev/demo/demo.zip#{stamp}",
        "stackName": "demo-plan", "distributionTags": {}, "samPackaged": False},
    "dependencies": {}, "customData.$": "$", "stackParameters": {}, "taskConfigHashCode": 42}
definition = {"StartAt": "Deploy", "States": {"Deploy": {"Type": "Task", "End": True, "ResultPath": "$.output.Deploy",
    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
    "Parameters": {"QueueUrl": queue, "MessageGroupId.$": "$$.Execution.Name",
                   "MessageDeduplicationId.$": "$$.Execution.Name", "MessageBody": body}}}}
machine = sfn.create_state_machine(name=f"AttiniDeploymentPlanSfnDemo{stamp}", definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::000000000000:role/demo")["stateMachineArn"]
execution = sfn.start_execution(stateMachineArn=machine, name=f"exec-{stamp}", input="{}")["executionArn"]
ddb.put_item(TableName="AttiniDeployDataV1", Item={"deploymentName": {"S": "dev-demo"}, "deploymentTime": {"N": "0"},
                                                   "executionArns": {"M": {"demo": {"S": execution}}}})


class Metadata(http.server.BaseHTTPRequestHandler):
    """ECS container metadata v4, as the ECS agent serves it."""
    def do_GET(self):
        data = json.dumps({"DesiredStatus": "RUNNING", "Labels": {"com.amazonaws.ecs.task-arn": TASK},
                           "LogOptions": {"awslogs-group": "/attini/runner/default", "awslogs-region": "us-east-1",
                                          "awslogs-stream": "logs/demo"}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Metadata)
threading.Thread(target=server.serve_forever, daemon=True).start()

# The variables the dispatcher sets on the container, then the runner as its wrapper starts it.
env = dict(os.environ, AWS_ENDPOINT_URL=ENDPOINT, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
           AWS_REGION="us-east-1", ATTINI_QUEUE_URL=queue, ATTINI_DEPLOY_DATA_TABLE="AttiniDeployDataV1",
           ATTINI_RESOURCE_STATE_TABLE="AttiniResourceStatesV1", ATTINI_CONFIGURATION_HASH="42",
           ATTINI_RUNNER_RESOURCE_NAME="demo-plan-Runner", ATTINI_DISABLE_ANSI_COLOR="true",
           ATTINI_AWS_ACCOUNT="000000000000", ATTINI_AWS_REGION="us-east-1", ATTINI_ARTIFACT_STORE=BUCKET,
           ATTINI_RUNNER_IDLE_TTL="5",
           ECS_CONTAINER_METADATA_URI_V4=f"http://127.0.0.1:{server.server_address[1]}/v4/container")
runner = subprocess.run([sys.argv[1], "start-token-of-the-triggering-step", "2.0.2"], env=env)
d = sfn.describe_execution(executionArn=execution)
print(json.dumps({k: d.get(k) for k in ("status", "output", "error", "cause")}, indent=2))
key = f"attini/deployment/logs/runner/dev/demo/{stamp}/Deploy/exec-{stamp}"
print("job log object:", s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().strip())
print("runner exit code:", runner.returncode)
