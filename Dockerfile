# Multi-stage: build with the Rust toolchain, run on a slim Debian with only the binary (the demo
# catalog of sandbox mode is compiled into it). `--build-arg FEATURES=--no-default-features` builds
# it without the simulators, for an image that can only run against the real Xano and Stripe.
FROM rust:1.95-bookworm AS build
ARG FEATURES=""
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin market $FEATURES

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 market
WORKDIR /app
COPY --from=build /src/target/release/market /usr/local/bin/market
USER market
EXPOSE 8080
ENV MARKET_BIND=0.0.0.0:8080
CMD ["market", "serve"]
