#!/usr/bin/env bash
# Reads the job input, greets, and writes the job's output.
set -euo pipefail
name=$(sed -n 's/.*"name" *: *"\([^"]*\)".*/\1/p' "$ATTINI_INPUT")
echo "Hello, ${name:-world}! Running in ${STAGE} from $(basename "$PWD")."
printf '{"greeting": "Hello, %s", "stage": "%s"}\n' "${name:-world}" "$STAGE" > "$ATTINI_OUTPUT"
