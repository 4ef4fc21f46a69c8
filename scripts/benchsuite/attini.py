"""An Attini deployment plan on the emulator for the benchmark: the dispatcher's tables, the
artifact bucket with a one-file distribution, the runner item owned by a task whose ECS
metadata a stand-in serves, and a one-step plan whose executions are all current. What the
runner then does per job is what it does on Fargate: a metadata read, two DynamoDB reads, the
distribution (cached after the first job), the job, the log object and the report."""
import atexit
import http.server
import io
import json
import os
import subprocess
import sys
import zipfile

PREFIX = "dev/demo/5ed6cd45-636d-4dd9-b7ed-a90580fd0b7e/distribution-origin"
TASK = "arn:aws:ecs:us-east-1:000000000000:task/attini-default/0123456789abcdef"
HASH = -1102536878
RUNNER_NAME = "dev-demo-deployment-plan-Runner"


def serve_metadata():
    """ECS container metadata v4 for TASK on a free loopback port, served by a process of its
    own, as the ECS agent is on Fargate: in the bench's process it would share the interpreter
    lock with the recording proxies, and each metadata read would delay the requests the proxies
    forward at the same moment. Returns its URL; the process ends with the bench's."""
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdout=subprocess.PIPE, text=True)
    atexit.register(server.terminate)
    return server.stdout.readline().strip()


def _serve_metadata_here():
    """The metadata server in this process until it is ended; prints its URL."""
    body = json.dumps({
        "DockerId": "abc", "Name": "runner", "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
        "Labels": {"com.amazonaws.ecs.task-arn": TASK, "com.amazonaws.ecs.cluster": "attini-default"},
        "LogDriver": "awslogs",
        "LogOptions": {"awslogs-group": "/attini/runner", "awslogs-region": "us-east-1", "awslogs-stream": "c/abc"},
    }).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}/v4/container", flush=True)
    server.serve_forever()


class Plan:
    """The dispatcher's side of one plan; `executions` names are made current up front."""

    def __init__(self, clients, name, executions):
        self.sqs, self.sfn, ddb, s3 = (clients[k] for k in ("sqs", "stepfunctions", "dynamodb", "s3"))
        self.queue = self.sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        self.resource_table, self.deploy_table, self.bucket = f"{name}States", f"{name}Deploy", f"{name}-artifacts"
        for table, (hash_key, range_key, kind) in {self.resource_table: ("resourceType", "name", "S"),
                                                   self.deploy_table: ("deploymentName", "deploymentTime", "N")}.items():
            ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"},
                                        {"AttributeName": range_key, "KeyType": "RANGE"}],
                             AttributeDefinitions=[{"AttributeName": hash_key, "AttributeType": "S"},
                                                   {"AttributeName": range_key, "AttributeType": kind}])
        s3.create_bucket(Bucket=self.bucket)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("x.txt", "x")
        s3.put_object(Bucket=self.bucket, Key=f"{PREFIX}/demo.zip", Body=archive.getvalue())
        ddb.put_item(TableName=self.resource_table, Item={
            "resourceType": {"S": "Runner"}, "name": {"S": RUNNER_NAME}, "taskId": {"S": TASK},
            "started": {"BOOL": False}, "environment": {"S": "dev"}, "distributionName": {"S": "demo"}})
        self.machine = self._machine(name)
        arns = {f"e{i}": {"S": self.machine.replace(":stateMachine:", ":execution:") + f":{e}"}
                for i, e in enumerate(executions)}
        ddb.put_item(TableName=self.deploy_table, Item={
            "deploymentName": {"S": "dev-demo"}, "deploymentTime": {"N": "0"}, "executionArns": {"M": arns}})

    def _machine(self, name):
        body = {
            "output": {}, "Properties": {"Commands": ["echo '{\"ok\":true}' > $ATTINI_OUTPUT"], "Runner": "Runner"},
            "deploymentPlanExecutionMetadata": {
                "retryCounter.$": "$$.State.RetryCount", "sfnToken.$": "$$.Task.Token", "stepName.$": "$$.State.Name",
                "executionArn.$": "$$.Execution.Id", "executionStartTime.$": "$$.Execution.StartTime"},
            "deploymentOriginData": {
                "distributionName": "demo", "deploymentTime": 1685614500000,
                "deploymentSource": {"deploymentSourcePrefix": PREFIX, "deploymentSourceBucket": self.bucket},
                "environment": "dev", "distributionId": "5ed6cd45-636d-4dd9-b7ed-a90580fd0b7e",
                "deploymentName": "dev-demo", "objectIdentifier": "dev/demo/demo.zip#v1",
                "stackName": "dev-demo-deployment-plan", "distributionTags": {}, "samPackaged": False},
            "dependencies": {}, "customData.$": "$", "stackParameters": {}, "taskConfigHashCode": HASH,
        }
        definition = {"StartAt": "Step", "States": {"Step": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True,
            "Parameters": {"QueueUrl": self.queue, "MessageGroupId.$": "$$.Execution.Name",
                           "MessageDeduplicationId.$": "$$.Execution.Name", "MessageBody": body}}}}
        return self.sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                             roleArn="arn:aws:iam::000000000000:role/bench")["stateMachineArn"]

    def runner(self, binary, url, work, metadata, slots=5):
        """The runner as the dispatcher starts it (its start token is a dummy it cannot answer),
        with `slots` jobs at once (5, the default, unless told)."""
        env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_REGION="us-east-1", ATTINI_QUEUE_URL=self.queue, ATTINI_DEPLOY_DATA_TABLE=self.deploy_table,
                   ATTINI_RESOURCE_STATE_TABLE=self.resource_table, ATTINI_CONFIGURATION_HASH=str(HASH),
                   ATTINI_RUNNER_RESOURCE_NAME=RUNNER_NAME, ATTINI_AWS_ACCOUNT="000000000000",
                   ATTINI_AWS_REGION="us-east-1", ATTINI_ARTIFACT_STORE=self.bucket, ATTINI_RUNNER_IDLE_TTL="3600",
                   ECS_CONTAINER_METADATA_URI_V4=metadata, ATTINI_WORK_DIR=work, ATTINI_OPS_ADDR="off",
                   # A quick stop, as scripts/bench.py's runners (QUICK_STOP there).
                   ATTINI_RECEIVE_WAIT="2", ATTINI_MAX_CONCURRENT_JOBS=str(slots))
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        return subprocess.Popen([binary, "bench-start-token", "2.0.2"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    _serve_metadata_here()
