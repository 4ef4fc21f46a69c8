# Runner image for ECS (Attini mode or `serve`). Build: docker build -t attini-runner .
# No ENTRYPOINT: the Attini dispatcher replaces the command with its bash start wrapper, and an
# ENTRYPOINT would break that (docs.attini.io, runner resource declaration).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY tests ./tests
RUN cargo build --release --locked --bin attini-runner

FROM debian:bookworm-slim
# bash runs every job; uname and curl are used by the dispatcher's start wrapper; unzip and jq
# by common job scripts (SAM steps unzip their project).
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash ca-certificates curl jq unzip coreutils util-linux \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/attini-runner /usr/local/bin/attini-runner
ENV ATTINI_RUNNER_EXEC=/usr/local/bin/attini-runner
CMD ["attini-runner", "serve"]
