"""B7, warm tool caches: the same `npm ci` job twice on one `serve` runner, the first on a cold
cache (a fresh runner's new home), the second with the npm cache the first left (`"caches":
["npm"]`); five such pairs, each on a runner of its own, and their medians. B7s: a third runner,
new, seeded from S3 with the npm cache the pair's runner held (`ATTINI_TOOL_CACHE_SEED`, the
job sent as it starts, so that its time includes the seed's download and unpacking), its first
`npm ci` against the cold one. B7k: in each pair a third job on the pair's runner names
`node_modules` as a workspace cache keyed by `package-lock.json` (as the cold one did, which
kept it) and runs `npm ci` only when it was not put back: what a warm runner saves where
unpacking, not downloading, is most of an install. Prints figures and
writes them to target/bench-caches.json (the keys of scripts/bench.py); asserts nothing. Needs the npm
registry (it downloads the test tools of scripts/tools: the AWS CDK CLI and Liquibase), npm,
ministack and boto3 (./scripts/test installs them).

    python3 scripts/bench_caches.py target/release/attini-runner [--link-mbit 100]

With `--link-mbit N` the jobs reach the registry through a link of N Mbit/s (scripts/benchsuite/
link.py, an HTTPS proxy on loopback, downloads limited, passed to npm as `npm_config_https_proxy`)
and the figures go to target/bench-caches-<N>mbit.json: the registry this machine reaches is far
nearer than the internet is to a Fargate task. The seed still comes from the emulator's S3 unlimited.

Target: the warm run takes at most half the cold one."""
import io, json, os, shutil, statistics, subprocess, sys, tempfile, time, zipfile

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "benchsuite"))
from common import start_ministack  # noqa: E402
from link import Link  # noqa: E402

RUNNER = os.path.abspath(sys.argv[1])
LINK_MBIT = float(sys.argv[sys.argv.index("--link-mbit") + 1]) if "--link-mbit" in sys.argv else None
LINK = Link(LINK_MBIT) if LINK_MBIT else None
LINK_ENV = {"npm_config_https_proxy": LINK.url} if LINK else {}
LINK_NOTE = f" through a {LINK_MBIT:g} Mbit/s link" if LINK else ""
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
os.makedirs(TARGET, exist_ok=True)
WORK = tempfile.mkdtemp(prefix="attini-bench-caches-", dir=TARGET)
emulator, port, endpoint = start_ministack()
CREDS = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
sqs, sfn, s3 = (boto3.client(k, endpoint_url=endpoint, **CREDS) for k in ("sqs", "stepfunctions", "s3"))


def distribution():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("package.json", "package-lock.json"):
            z.write(os.path.join(TOOLS, name), name)
    s3.create_bucket(Bucket="b7-bench")
    s3.put_object(Bucket="b7-bench", Key="app.zip", Body=buf.getvalue())
    return {"bucket": "b7-bench", "key": "app.zip"}


def machine(caches, pair, queue=None, keep=False):
    """A queue for the pair (or `queue`) and a state machine sending the install job to it; with
    `keep`, the job also names `node_modules` as a workspace cache keyed by the lock file and
    skips `npm ci` when it was put back (the README's example)."""
    queue = queue or sqs.create_queue(QueueName=f"b7-{pair}.fifo",
                                      Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"})["QueueUrl"]
    install = "npm ci --prefer-offline --no-audit --no-fund --loglevel=error"
    body = {"taskToken.$": "$$.Task.Token", "stepName": "Install", "distribution": DIST, "caches": caches,
            "commands": [f"[ -d node_modules ] || {install}" if keep else install,
                         "echo '{\"ok\":true}' > $ATTINI_OUTPUT"]}
    if keep:
        body["workspaceCaches"] = [{"path": "node_modules", "keyFiles": ["package-lock.json"]}]
    definition = {"StartAt": "Run", "States": {"Run": {"Type": "Task", "End": True,
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageGroupId.$": "$$.Execution.Name",
                       "MessageDeduplicationId.$": "$$.Execution.Name", "MessageBody": body}}}}
    arn = sfn.create_state_machine(name=f"b7-{pair}{'-keep' if keep else ''}", definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::000000000000:role/bench")["stateMachineArn"]
    return queue, arn


def run(arn, name):
    """Seconds from the execution's start to its end."""
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    while True:
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING":
            if d["status"] != "SUCCEEDED":
                raise SystemExit(f"{name}: {d['status']} {d.get('cause', '')}")
            return (d["stopDate"] - d["startDate"]).total_seconds()
        time.sleep(0.05)


def serve(queue, pair, **extra):
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION="us-east-1", ATTINI_OPS_ADDR="off", ATTINI_WORK_DIR=os.path.join(WORK, f"serve-{pair}"),
               ATTINI_RECEIVE_WAIT="2",  # a quick stop (see scripts/bench.py's QUICK_STOP)
               **LINK_ENV, **extra)
    env.pop("npm_config_cache", None)
    return subprocess.Popen([RUNNER, "serve", "--queue-url", queue], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def upload_seed(pair):
    """The npm cache of the pair's runner (its one home), zipped as a seed; its S3 location."""
    work = os.path.join(WORK, f"serve-{pair}")
    homes = [os.path.join(root, ".npm") for root, dirs, _ in os.walk(work) if ".npm" in dirs]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for root, _, files in os.walk(homes[0]):
            for name in files:
                path = os.path.join(root, name)
                z.write(path, os.path.relpath(path, os.path.dirname(homes[0])))
    s3.put_object(Bucket="b7-bench", Key=f"seed-{pair}.zip", Body=buf.getvalue())
    return f"s3://b7-bench/seed-{pair}.zip", len(buf.getvalue())


try:
    DIST = distribution()
    colds, warms, kept, seeded = [], [], [], []
    for pair in range(5):
        queue, arn = machine(["npm"], pair)
        _, keep_arn = machine(["npm"], pair, queue=queue, keep=True)
        proc = serve(queue, pair)  # a new work folder: a cold home
        # The cold run keeps its node_modules; the warm one runs `npm ci` with the npm cache
        # alone (it names no workspace cache); the third gets node_modules back.
        colds.append(run(keep_arn, "cold"))
        warms.append(run(arn, "warm"))
        kept.append(run(keep_arn, "kept"))
        seed, seed_bytes = upload_seed(pair)
        proc.terminate()
        proc.wait()
        # A queue of its own: the stopped runner's last long poll may still take a message.
        queue, arn = machine(["npm"], f"{pair}-seeded")
        proc = serve(queue, f"{pair}-seeded", ATTINI_TOOL_CACHE_SEED=seed)
        seeded.append(run(arn, "seeded"))
        proc.terminate()
        proc.wait()
        print(f"    pair {pair + 1}: cold {colds[-1]:.1f} s, warm {warms[-1]:.1f} s, "
              f"warm/cold {warms[-1] / colds[-1]:.2f}; node_modules kept {kept[-1]:.2f} s, "
              f"kept/cold {kept[-1] / colds[-1]:.3f}; a new runner seeded from S3 "
              f"({seed_bytes / 1e6:.0f} MB zip) {seeded[-1]:.1f} s, seeded/cold {seeded[-1] / colds[-1]:.2f}",
              flush=True)
    cold, warm = statistics.median(colds), statistics.median(warms)
    ratios = sorted(w / c for w, c in zip(warms, colds))
    print(f"B7 npm ci of scripts/tools (aws-cdk, liquibase) in serve{LINK_NOTE}, caches [npm], medians of five: "
          f"cold {cold:.1f} s, warm {warm:.1f} s, warm/cold {warm / cold:.2f} (target at most 0.5; "
          f"pairs {ratios[0]:.2f} to {ratios[-1]:.2f})")
    kept_median = statistics.median(kept)
    kept_ratios = sorted(k / c for k, c in zip(kept, colds))
    print(f"B7k the same job with node_modules a workspace cache keyed by package-lock.json, put back "
          f"(npm ci skipped), against the cold one: {kept_median:.2f} s, kept/cold {kept_median / cold:.3f} "
          f"(target at most 0.5; pairs {kept_ratios[0]:.3f} to {kept_ratios[-1]:.3f})")
    seed_median = statistics.median(seeded)
    seed_ratios = sorted(s / c for s, c in zip(seeded, colds))
    print(f"B7s the first npm ci of a new runner seeded from S3, against the cold one: {seed_median:.1f} s, "
          f"seeded/cold {seed_median / cold:.2f} (pairs {seed_ratios[0]:.2f} to {seed_ratios[-1]:.2f})")
    name = f"bench-caches-{LINK_MBIT:g}mbit.json" if LINK else "bench-caches.json"
    key = f"_{LINK_MBIT:g}mbit" if LINK else ""  # B7_100mbit: one table holds both
    with open(os.path.join(TARGET, name), "w") as f:
        json.dump({f"B7{key}": dict(what=f"npm ci with a warm npm cache against a cold one (serve){LINK_NOTE}, median of five",
                              ours=round(warm, 3), reference=round(cold, 3), unit="s",
                              ratio=round(warm / cold, 3), target="at most 0.5x the cold run",
                              pair_ratios=[round(r, 3) for r in ratios]),
                   f"B7k{key}": dict(what=f"the install job with node_modules a workspace cache, put back, against a cold one (serve){LINK_NOTE}, median of five",
                                     ours=round(kept_median, 3), reference=round(cold, 3), unit="s",
                                     ratio=round(kept_median / cold, 3), target="at most 0.5x the cold run",
                                     pair_ratios=[round(r, 3) for r in kept_ratios]),
                   f"B7s{key}": dict(what=f"a new runner's first npm ci, seeded from S3, against a cold one{LINK_NOTE}, median of five",
                               ours=round(seed_median, 3), reference=round(cold, 3), unit="s",
                               ratio=round(seed_median / cold, 3), pair_ratios=[round(r, 3) for r in seed_ratios])},
                  f, indent=2)
finally:
    emulator.terminate()
    shutil.rmtree(WORK, ignore_errors=True)
