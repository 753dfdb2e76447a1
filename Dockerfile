# syntax=docker/dockerfile:1.7
# The curio image: one static-ish binary (glibc, rustls; no OpenSSL) on distroless, non-root.
#   docker build -t ghcr.io/curio-dev/curio:0.1.0 .
# The chart runs it as `curio controller`, `curio api` and `curio migrate`.

ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# Registry and target caches survive between builds; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin curio \
 && install -D -m 0755 target/release/curio /out/curio

# glibc and libgcc, CA certificates, a nonroot user (65532), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="curio" \
      org.opencontainers.image.description="Multi-tenant, Kubernetes-native catalog of AI assets" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/curio-dev/curio"
COPY --from=build /out/curio /usr/local/bin/curio
USER 65532:65532
EXPOSE 8080 9090 9443
ENTRYPOINT ["/usr/local/bin/curio"]
CMD ["--help"]
