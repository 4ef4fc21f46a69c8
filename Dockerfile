# syntax=docker/dockerfile:1
# The runner's images. Six targets, each adding only what its tools need:
#   runtime    the runner with bash, coreutils, ca-certificates, curl, jq and unzip (default)
#   tools      runtime + git and the OpenSSH client, for jobs that clone repositories
#   cdk        runtime + Node.js, the AWS CDK CLI and Python with the CDK library, for `kind: "cdk"`
#              jobs and AttiniCdk steps (TypeScript/JavaScript or Python apps)
#   sam        runtime + Python and the AWS SAM CLI, for `kind: "sam"` jobs and AttiniSam steps
#   liquibase  runtime + Java 17 and Liquibase (with its PostgreSQL driver), for migrations
#   pytest     runtime + Python and pytest, for integration-test suites
# The tools of each target are installed in a stage that does not depend on the runner's binary,
# so a new binary rebuilds only the last layer of every target.
# Build:  docker build --target runtime -t attini-runner:2.1.0 .     (or podman build --format docker)
# Arm64:  docker buildx build --platform linux/arm64 --target runtime -t attini-runner:2.1.0-arm64 .
#         (or both at once: --platform linux/amd64,linux/arm64 --push, a multi-arch manifest)
#
# No ENTRYPOINT: the Attini dispatcher replaces the command with its bash start wrapper, and an
# ENTRYPOINT would break that (CONTRACT.md 3.1). The runner runs as the non-root user `runner`;
# everything it writes (job folders, the distribution cache, $HOME, $TMPDIR) is under the volume
# /work, so the root filesystem can be read-only.

# The Rust build stage runs on the build machine's platform and cross-compiles for the target's
# (TARGETARCH: amd64 or arm64, set by buildx: `docker buildx build --platform linux/arm64 ...`).
# It leaves the binary at /out/attini-runner. Tests feed this stage the binary cargo already built
# (`--build-context build=DIR` with the binary at DIR/out/attini-runner).
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM --platform=${BUILDPLATFORM} ${RUST_IMAGE} AS build
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
# The target's Rust triple, its standard library and, when it is not the build machine's own
# architecture, Debian's cross C compiler (the TLS library of the AWS SDK compiles C).
RUN case "${TARGETARCH:-$(dpkg --print-architecture)}" in \
      amd64) triple=x86_64-unknown-linux-gnu gcc=gcc-x86-64-linux-gnu cc=x86_64-linux-gnu-gcc ;; \
      arm64) triple=aarch64-unknown-linux-gnu gcc=gcc-aarch64-linux-gnu cc=aarch64-linux-gnu-gcc ;; \
      *) echo "TARGETARCH=${TARGETARCH} is not supported (amd64, arm64)" >&2; exit 1 ;; \
    esac \
 && echo "$triple" > /triple && echo "$cc" > /cc \
 && rustup target add "$triple" \
 && if [ "${triple%%-*}" != "$(uname -m)" ]; then \
      apt-get update && apt-get install -y --no-install-recommends "$gcc" "libc6-dev-${TARGETARCH}-cross" \
      && rm -rf /var/lib/apt/lists/*; fi
COPY build.rs ./
COPY src ./src
COPY tests ./tests
# The benchmarks' reference loop is a second binary of the package: cargo reads every target.
COPY scripts/benchsuite/minimal_loop.rs ./scripts/benchsuite/
RUN triple=$(cat /triple) cc=$(cat /cc) \
 && target_env=$(echo "$triple" | tr 'a-z-' 'A-Z_') \
 && export "CARGO_TARGET_${target_env}_LINKER=$cc" "CC_$(echo "$triple" | tr - _)=$cc" \
 && cargo build --release --locked --bin attini-runner --target "$triple" \
 && mkdir -p /out && cp "target/$triple/release/attini-runner" /out/attini-runner

# Everything the targets share: Debian with the runner's user, its folders, its settings and
# the image's metadata. No binary yet (each target copies it last).
FROM ${BASE_IMAGE} AS system
# Keep VERSION equal to Cargo.toml's version (a test checks it).
ARG VERSION=2.1.0
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="attini-runner" \
      org.opencontainers.image.description="A warm job runner for AWS Step Functions, compatible with the Attini Runner" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}"
# bash runs every job; uname (coreutils) and curl are used by the Attini start wrapper; jq and
# unzip by common job scripts (SAM steps unzip their project). git (and the perl it brings, 90 MB)
# is in the `tools` target. No package archive or list is kept, whatever the base's apt settings.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash ca-certificates coreutils curl jq unzip \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*
RUN useradd --uid 10001 --user-group --home-dir /work/home --no-create-home --shell /bin/bash runner \
 && mkdir -p /work/home /work/tmp /work/runner \
 && chown -R runner:runner /work
ENV HOME=/work/home \
    TMPDIR=/work/tmp \
    ATTINI_WORK_DIR=/work/runner \
    ATTINI_RUNNER_EXEC=/usr/local/bin/attini-runner
WORKDIR /work
VOLUME ["/work"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["attini-runner", "healthcheck"]
CMD ["attini-runner", "serve"]

# Node.js and the AWS CDK CLI from npm, installed globally; Python with the CDK library in a
# virtual environment first on PATH, so a Python app's `python3 app.py` finds aws_cdk. Behind a
# TLS-inspecting proxy, pass its CA: --secret id=build-ca,src=proxy-ca.crt
FROM system AS cdk-tools
ARG CDK_VERSION=2.1148.1
ARG CDK_LIB_VERSION=2.275.0
ARG CONSTRUCTS_VERSION=10.8.1
RUN --mount=type=secret,id=build-ca,required=false \
    apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm python3 python3-venv \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* \
 && if [ -s /run/secrets/build-ca ]; then \
      export NODE_EXTRA_CA_CERTS=/run/secrets/build-ca \
      && cat /etc/ssl/certs/ca-certificates.crt /run/secrets/build-ca > /tmp/build-ca.pem \
      && export PIP_CERT=/tmp/build-ca.pem; fi \
 && npm install --global --no-fund --no-audit "aws-cdk@${CDK_VERSION}" \
 && npm cache clean --force \
 && python3 -m venv /opt/cdk-python \
 && /opt/cdk-python/bin/pip install --no-cache-dir --disable-pip-version-check \
      "aws-cdk-lib==${CDK_LIB_VERSION}" "constructs==${CONSTRUCTS_VERSION}" \
 && rm -f /tmp/build-ca.pem \
 && cdk --version
ENV CDK_DISABLE_VERSION_CHECK=1 \
    PATH=/opt/cdk-python/bin:$PATH

# The SAM CLI in its own virtual environment, linked onto PATH (proxy CA: as for cdk).
FROM system AS sam-tools
ARG SAM_VERSION=1.170.0
RUN --mount=type=secret,id=build-ca,required=false \
    apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* \
 && if [ -s /run/secrets/build-ca ]; then \
      cat /etc/ssl/certs/ca-certificates.crt /run/secrets/build-ca > /tmp/build-ca.pem \
      && export PIP_CERT=/tmp/build-ca.pem; fi \
 && python3 -m venv /opt/sam \
 && /opt/sam/bin/pip install --no-cache-dir --disable-pip-version-check "aws-sam-cli==${SAM_VERSION}" \
 && rm -f /tmp/build-ca.pem \
 && ln -s /opt/sam/bin/sam /usr/local/bin/sam \
 && sam --version
ENV SAM_CLI_TELEMETRY=0

# Liquibase's own distribution (with its PostgreSQL driver), taken from its npm package; npm
# stays in this stage.
FROM system AS liquibase-download
ARG LIQUIBASE_VERSION=4.28.1
RUN --mount=type=secret,id=build-ca,required=false \
    apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* \
 && if [ -s /run/secrets/build-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/build-ca; fi \
 && npm install --prefix /opt/liquibase-npm --no-fund --no-audit "liquibase@${LIQUIBASE_VERSION}"

# Java 17 (Debian's headless runtime) and Liquibase on PATH. Java writes its temporary files
# under the volume (the root filesystem is read-only).
FROM system AS liquibase-tools
# The JRE's alternatives link its man pages, which slim images leave out.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*
COPY --from=liquibase-download /opt/liquibase-npm/node_modules/liquibase/dist/liquibase /opt/liquibase
RUN ln -s /opt/liquibase/liquibase /usr/local/bin/liquibase \
 && liquibase --version >/dev/null
ENV JAVA_OPTS=-Djava.io.tmpdir=/work/tmp

# Debian's Python and pytest.
FROM system AS pytest-tools
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pytest \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* \
 && python3 -m pytest --version

FROM cdk-tools AS cdk
COPY --from=build --chmod=0755 /out/attini-runner /usr/local/bin/attini-runner
USER 10001:10001

FROM sam-tools AS sam
COPY --from=build --chmod=0755 /out/attini-runner /usr/local/bin/attini-runner
USER 10001:10001

FROM liquibase-tools AS liquibase
COPY --from=build --chmod=0755 /out/attini-runner /usr/local/bin/attini-runner
USER 10001:10001

FROM pytest-tools AS pytest
COPY --from=build --chmod=0755 /out/attini-runner /usr/local/bin/attini-runner
USER 10001:10001

# git (with perl) and the OpenSSH client, for jobs that clone or push repositories.
FROM system AS git-tools
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* \
 && git --version

FROM git-tools AS tools
COPY --from=build --chmod=0755 /out/attini-runner /usr/local/bin/attini-runner
USER 10001:10001

# The default target, last so that a plain `docker build .` builds it.
FROM system AS runtime
COPY --from=build --chmod=0755 /out/attini-runner /usr/local/bin/attini-runner
USER 10001:10001
