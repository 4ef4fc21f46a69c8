"""Standalone mode on a local emulator, end to end: queue, bucket, distribution zip, the
example state machine, the runner serving the queue, one execution and its result.

    python3 -m venv /tmp/demo-venv && /tmp/demo-venv/bin/pip install ministack==1.5.33 boto3==1.43.11
    BIND_HOST=127.0.0.1 GATEWAY_PORT=4566 /tmp/demo-venv/bin/ministack &
    cargo build --release
    /tmp/demo-venv/bin/python examples/standalone/demo.py target/release/attini-runner
"""
import io, json, os, pathlib, subprocess, sys, time, zipfile

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
ENV = dict(os.environ, AWS_ENDPOINT_URL=ENDPOINT, AWS_ACCESS_KEY_ID="test",
           AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
here = pathlib.Path(__file__).resolve().parent
kw = dict(endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
sqs, s3, sfn = (boto3.client(s, **kw) for s in ("sqs", "s3", "stepfunctions"))

queue = sqs.create_queue(QueueName="runner.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
s3.create_bucket(Bucket="demo-artifacts")
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    script = here.parent / "hello" / "dist" / "greet.sh"
    info = zipfile.ZipInfo("greet.sh")
    info.external_attr = 0o100755 << 16
    z.writestr(info, script.read_text())
s3.put_object(Bucket="demo-artifacts", Key="hello/dist.zip", Body=buf.getvalue())

definition = (here / "state-machine.json").read_text().replace("QUEUE_URL", queue).replace("BUCKET", "demo-artifacts")
machine = sfn.create_state_machine(name=f"hello-{int(time.time())}", definition=definition,
                                   roleArn="arn:aws:iam::000000000000:role/demo")["stateMachineArn"]
runner = subprocess.Popen([sys.argv[1], "serve", "--queue-url", queue, "--idle-ttl", "5"], env=ENV)
execution = sfn.start_execution(stateMachineArn=machine, name=f"run-{int(time.time())}",
                                input=json.dumps({"name": "Step Functions"}))["executionArn"]
while (d := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
    time.sleep(0.2)
print(json.dumps({k: d.get(k) for k in ("status", "output", "error", "cause")}, indent=2))
runner.wait()
