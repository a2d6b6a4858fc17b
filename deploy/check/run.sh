#!/usr/bin/env bash
# Validates the deployment files offline: every manifest under deploy/kubernetes and
# deploy/postgres decoded strictly into the real API types, the kustomization built, the NATS
# Helm values checked, and mash's deployment policy applied. Prints one line per document
# and a summary; exits non-zero on any problem.
#
#   deploy/check/run.sh [deploy dir]     # default: the deploy directory this script is in
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="$(cd "${1:-$here/..}" && pwd)"
cd "$here"
exec go run . "$target"
