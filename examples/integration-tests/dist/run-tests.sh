#!/usr/bin/env bash
# Runs the suite in tests/ against $SERVICE_URL and writes a JUnit XML report. Where the runner
# has an artifact store (ATTINI_ARTIFACT_STORE), the report is stored there with
# `command-mode store-artifact`. The job's output is the summary (summarize.py); a failing test
# fails the job, and the last line of the log, which ends the failure cause, names it.
set -uo pipefail
report=junit.xml
python3 -m pytest tests -q --tb=short -p no:cacheprovider --junitxml="$report"
status=$?
[ -f "$report" ] || { echo "pytest wrote no report (exit code $status)" >&2; exit 1; }
location=
if [ -n "${ATTINI_ARTIFACT_STORE:-}" ]; then
  key="integration-tests/${ATTINI_STEP_NAME:-tests}/$(date -u +%Y%m%dT%H%M%SZ)-$RANDOM/junit.xml"
  "$ATTINI_RUNNER_EXEC" command-mode store-artifact "$key" "$report" || exit 1
  location="s3://$ATTINI_ARTIFACT_STORE/$key"
fi
python3 summarize.py "$report" "$location" > "$ATTINI_OUTPUT" || exit 1
exit "$status"
