# Multi-stage: build with the Rust toolchain, run on a slim Debian with only the binary and the demo
# tiers file (used by sandbox mode).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin market

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 market
WORKDIR /app
COPY --from=build /src/target/release/market /usr/local/bin/market
COPY examples/tiers.toml examples/tiers.toml
USER market
EXPOSE 8080
ENV MARKET_BIND=0.0.0.0:8080
CMD ["market", "serve"]
