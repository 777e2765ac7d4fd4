# syntax=docker/dockerfile:1

# Build stage: a static binary with no trace of the build machine's paths.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/tenantry ./cmd/tenantry
# The data directory, owned by the runtime user, for the embedded shape
# and for blobs on local disk.
RUN mkdir -p /out/data

# Runtime stage: CA certificates, time zones and a non-root user; no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tenantry /usr/local/bin/tenantry
COPY --from=build --chown=65532:65532 /out/data /data
ENV TENANTRY_DATA_DIR=/data
USER 65532:65532
EXPOSE 4999
VOLUME ["/data"]
# tenantry probes itself: there is no shell or curl in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/tenantry", "health"]
ENTRYPOINT ["/usr/local/bin/tenantry"]
CMD ["serve"]
