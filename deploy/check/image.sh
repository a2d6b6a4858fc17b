#!/usr/bin/env bash
# Proves the Dockerfile builds mash without a container engine: takes the build stage's
# `go build` command from the Dockerfile as written, runs it on this checkout with a test
# VERSION (into a temporary directory instead of /out), and checks that the binary is
# static and that `mash version` prints the stamped version.
#
#   deploy/check/image.sh [Dockerfile]     # default: the repository's Dockerfile
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dockerfile="${1:-$repo/Dockerfile}"

fail() { echo "image check: $*" >&2; exit 1; }

# The build stage must be the golang image, the final stage distroless as the non-root user.
grep -Eq '^FROM golang:[^ ]+ AS build$' "$dockerfile" || fail "$dockerfile: no 'FROM golang:... AS build' stage"
grep -Eq '^FROM gcr.io/distroless/static[^ ]*:nonroot$' "$dockerfile" || fail "$dockerfile: the final stage must be distroless static :nonroot"
[[ "$(grep -E '^USER ' "$dockerfile" | tail -1)" == "USER 65532:65532" ]] || fail "$dockerfile: the last USER must be 65532:65532"

# Exactly one RUN line holds the go build; continuation lines are not used for it.
mapfile -t builds < <(grep -E '^RUN .*go build ' "$dockerfile")
[[ ${#builds[@]} -eq 1 ]] || fail "$dockerfile: want exactly one 'RUN ... go build' line, found ${#builds[@]}"
cmd="${builds[0]#RUN }"
for want in 'CGO_ENABLED=0' '-trimpath' '-X main.version=${VERSION}' './services/mash'; do
  [[ "$cmd" == *"$want"* ]] || fail "$dockerfile: the go build line lacks $want"
done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
version="0.0.0-imagecheck"
# The Dockerfile writes to /out; here the same command writes to the temporary directory.
cmd="${cmd//\/out\//$out/}"
(cd "$repo" && VERSION="$version" bash -c "$cmd") || fail "the Dockerfile's go build failed: $cmd"
[[ -x "$out/mash" ]] || fail "the go build line did not produce $out/mash"
if command -v file >/dev/null 2>&1 && ! file "$out/mash" | grep -q 'statically linked'; then
  fail "mash is not statically linked: $(file "$out/mash")"
fi
got="$("$out/mash" version)"
[[ "$got" == "mash $version" ]] || fail "mash version printed \"$got\", want \"mash $version\""
echo "image check: the Dockerfile's build stage builds mash ($got)"
