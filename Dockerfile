# One image with the four service binaries; compose picks one per container.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        --bin micro-gateway --bin micro-auth --bin micro-payments --bin micro-ledger --bin micro-stack \
    && mkdir -p /out \
    && cp target/release/micro-gateway target/release/micro-auth target/release/micro-payments \
          target/release/micro-ledger target/release/micro-stack /out/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 micro
COPY --from=build /out/ /usr/local/bin/
USER micro
ENV LOG_FORMAT=json RUST_LOG=info
CMD ["micro-stack"]
