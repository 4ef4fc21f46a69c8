#!/usr/bin/env bash
# Applies changelog.yaml with Liquibase; the job's output is its update summary,
# {"changesetsRun": N, "previouslyRun": M}. Liquibase takes its settings from LIQUIBASE_COMMAND_*
# variables: the URL and the user from the job's environment, the password from its
# secretEnvironment, so the password is on no command line and in no file.
set -euo pipefail
liquibase=${LIQUIBASE:-liquibase}
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
"$liquibase" --show-banner=false update --changelog-file=changelog.yaml 2>&1 | tee "$summary"
run=$(awk '/^Run:/ {print $2}' "$summary")
previously=$(awk '/^Previously run:/ {print $3}' "$summary")
printf '{"changesetsRun": %d, "previouslyRun": %d}\n' "$run" "$previously" > "$ATTINI_OUTPUT"
