"""Idle resident memory of `attini-runner serve` with the ops server off and on (no trace
exporter), on a local emulator: after startup, and again after a stretch of probing
(`/livez`, `/readyz` and `/metrics` ten times a second, more than any health checker does).
Prints figures in MiB; asserts nothing.

    python3 scripts/bench_ops_memory.py target/release/attini-runner [PROBE_SECONDS]
"""
import os, subprocess, sys, time, urllib.request

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "benchsuite"))
from common import free_port, start_ministack, status_mib, wait_for_port  # noqa: E402

RUNNER = sys.argv[1]
PROBE_SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 60


emulator, port, endpoint = start_ministack()
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    queue = sqs.create_queue(QueueName="idle")["QueueUrl"]
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION="us-east-1")
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    for label in ("off", "on"):
        ops = free_port()
        env["ATTINI_OPS_ADDR"] = "off" if label == "off" else f"127.0.0.1:{ops}"
        proc = subprocess.Popen([RUNNER, "serve", "--queue-url", queue], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if label == "on":
            wait_for_port(ops)
        time.sleep(3)  # a measurement, not a test: let the first long poll start
        start = status_mib(proc.pid, "VmRSS")
        deadline = time.monotonic() + PROBE_SECONDS
        probes = 0
        while time.monotonic() < deadline:
            if label == "on":
                for path in ("/livez", "/readyz", "/metrics"):
                    opener.open(f"http://127.0.0.1:{ops}{path}", timeout=5).read()
                probes += 3
            time.sleep(0.1)
        end = status_mib(proc.pid, "VmRSS")
        proc.terminate()
        proc.wait()
        print(f"ops server {label:3}: idle RSS {start:.1f} MiB after start, {end:.1f} MiB after "
              f"{PROBE_SECONDS} s ({probes} requests), growth {end - start:+.1f} MiB")
finally:
    emulator.terminate()
