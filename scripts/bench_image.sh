#!/usr/bin/env bash
# The runtime image with the release binary: its size and its cold start (container start to the
# first ReceiveMessage, and to the first job's answer), over RUNS runs of the image test
# (tests/it/image.rs) with ATTINI_IMAGE_BINARY set. Prints figures and writes
# target/bench-image.json with the keys of scripts/bench.py (medians, and each run's figures).
# Asserts nothing. Needs podman (./scripts/test installs it) and the test tools.
# Usage: ./scripts/bench_image.sh [RUNS]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --quiet --locked --bin attini-runner
export ATTINI_IMAGE_BINARY="$PWD/target/release/attini-runner"
export AWS_EC2_METADATA_DISABLED=true ATTINI_TEST_TOOLS="${ATTINI_TEST_TOOLS:-$PWD/target/test-tools}"
export PATH="$PWD/target/test-tools/venv/bin:$PATH"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for _ in $(seq "$runs"); do
  cargo nextest run --locked --test it --no-capture \
    -E 'test(=image::the_runtime_image_runs_jobs_as_non_root_on_a_read_only_root)' 2>&1 |
    grep -E '^(image runtime|cold start in the image)' | tee -a "$log"
done
python3 - "$log" "$runs" <<'PY'
import json, re, statistics, sys
text = open(sys.argv[1]).read()
sizes = [float(m) for m in re.findall(r"image runtime: (\d+) MB", text)]
bare = [float(m) for m in re.findall(r"(\d+) MB without the runner binary", text)]
receive = [float(m) for m in re.findall(r"first receive (\d+) ms", text)]
answer = [float(m) for m in re.findall(r"first job's answer (\d+) ms", text)]
if not (sizes and receive and answer):
    sys.exit("no figures: the image test did not print them (is podman installed?)")
median = statistics.median
figures = {
    "I1": dict(what="runtime image, uncompressed, release binary", ours=median(sizes), reference=120,
               unit="MB", ratio=round(median(sizes) / 120, 3), target="at most 120 MB",
               without_binary_mb=median(bare), runs=sizes),
    "I2": dict(what="cold start in the image: container start -> first ReceiveMessage, median",
               ours=median(receive), reference=None, unit="ms", ratio=None, target=None,
               runs=receive),
    "I3": dict(what="cold start in the image: container start -> first job's answer, median",
               ours=median(answer), reference=None, unit="ms", ratio=None, target=None,
               runs=answer),
}
with open("target/bench-image.json", "w") as f:
    json.dump(figures, f, indent=2)
print(f"I1 runtime image {median(sizes):.0f} MB ({median(bare):.0f} MB without the binary); "
      f"I2 start -> first receive {median(receive):.0f} ms ({min(receive):.0f} to {max(receive):.0f}); "
      f"I3 start -> first answer {median(answer):.0f} ms ({min(answer):.0f} to {max(answer):.0f}) over {sys.argv[2]} runs")
print("JSON: target/bench-image.json")
PY
