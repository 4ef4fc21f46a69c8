#!/usr/bin/env bash
# Applies changelog.yaml with Liquibase; the job's output is its update summary,
# {"changesetsRun": N, "previouslyRun": M}. Liquibase takes its settings from LIQUIBASE_COMMAND_*
# variables: the URL and the user from the job's environment, the password from its
# secretEnvironment, so the password is on no command line and in no file.
set -euo pipefail
liquibase=${LIQUIBASE:-liquibase}
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
# Under the runner's lock (the job's `lock`, in ATTINI_LOCK) no other migration of this database
# runs, on any runner: a DATABASECHANGELOGLOCK left set by a migration killed mid-run is stale,
# and is cleared instead of waited on for five minutes.
if [ -n "${ATTINI_LOCK:-}" ]; then
  "$liquibase" --show-banner=false release-locks
fi
"$liquibase" --show-banner=false update --changelog-file=changelog.yaml 2>&1 | tee "$summary"
run=$(awk '/^Run:/ {print $2}' "$summary")
previously=$(awk '/^Previously run:/ {print $3}' "$summary")
printf '{"changesetsRun": %d, "previouslyRun": %d}\n' "$run" "$previously" > "$ATTINI_OUTPUT"
