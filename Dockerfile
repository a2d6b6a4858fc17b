# The mash image: one static binary on a distroless base, run as the non-root user 65532.
#
#   docker build --build-arg VERSION=0.1.0 -t registry.example.org/mash/mash:0.1.0 .
#
# deploy/check/image.sh runs this file's `go build` line without a container engine, so a
# change here that stops it building mash fails scripts/test.
ARG GO_VERSION=1.26.10

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so a source-only change reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
# Static (no cgo) so it runs on distroless/static; -trimpath so the binary names no build
# host paths; the version is stamped for `mash version`.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mash ./services/mash

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=devel
LABEL org.opencontainers.image.title="mash" \
      org.opencontainers.image.description="Multi-Agency Safeguarding Hub services" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/mash /usr/local/bin/mash
# 65532 is distroless's "nonroot"; the manifests' securityContext runs as the same uid.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/mash"]
CMD ["serve"]
