#!/usr/bin/env bash
# The whole lifecycle on the local env: train → evaluate → package → deploy → invoke → teardown.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' green=$'\033[32m' off=$'\033[0m'
else bold='' green='' off=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$off"; "$@"; }
cleanup() { iris-mlops teardown --env local >/dev/null 2>&1 || true; }
trap 'status=$?; if [ $status -ne 0 ]; then cleanup; fi' EXIT

step iris-mlops train --seed 42
step iris-mlops evaluate
step iris-mlops package --env local
step iris-mlops deploy --env local
step iris-mlops invoke 5.1 3.5 1.4 0.2
step iris-mlops invoke 6.7 3.0 5.2 2.3
step iris-mlops status
step iris-mlops teardown --env local
printf '\n%sDone: trained, evaluated, packaged, deployed, invoked and torn down on 127.0.0.1.%s\n' "$green" "$off"
