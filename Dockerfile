# One image for the AWS Batch job and every Lambda function (built by the CDK app's
# DockerImageAsset; tests/infra/test_dockerfile.py checks this file, as Docker can't run here).
#   Batch:  runs the default CMD below (the job definition sets the same command).
#   Lambda: the function's image config sets entrypoint ["python", "-m", "awslambdaric"]
#           and cmd [<handler path>], e.g. ["tasks.validate.handler.handler"].

# Stage 1: the native conversion core (native/: Rust, PyO3) as a wheel for linux x86_64, built
# with the toolchain native/rust-toolchain.toml pins and the crates Cargo.lock pins. The wheel is
# abi3 (CPython >= 3.11) and linked against this Debian release's glibc, the runtime's own.
# arm64 (Graviton Lambda/Batch): the same Dockerfile under `docker buildx build --platform
# linux/arm64` (both images are multi-arch; the crates need nothing architecture-specific), and
# the CDK asset's platform set to LINUX_ARM64.
FROM public.ecr.aws/docker/library/rust:1.95.0-slim-bookworm AS native
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY constraints.txt ./
COPY native/ native/
RUN python3 -m venv /opt/maturin \
    && /opt/maturin/bin/pip install --no-cache-dir -c constraints.txt maturin \
    && /opt/maturin/bin/maturin build --release --locked --compatibility linux \
        --manifest-path native/Cargo.toml --out /wheels

# Stage 2, the image. Exact tag; pin the digest too (@sha256:...) once it can be resolved.
FROM public.ecr.aws/docker/library/python:3.11.14-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Only what the tasks and the Batch entrypoint need: no CLI, no embedded runtime, no tests
# (.dockerignore keeps everything else out of the build context).
WORKDIR /tmp/chute-src
COPY pyproject.toml constraints.txt README.md ./
COPY tasks/ tasks/
COPY batch/ batch/

COPY --from=native /wheels/ /tmp/wheels/

# The project's runtime dependencies plus the Lambda Runtime Interface Client (extra "lambda"),
# all locked by constraints.txt, and the native core's wheel. The sources are installed into
# site-packages, then removed.
RUN pip install -c constraints.txt ".[lambda]" /tmp/wheels/chute_native-*.whl \
    && cd / && rm -rf /tmp/chute-src /tmp/wheels

# Run as a fixed, unprivileged uid. Installed files stay root-owned and world-readable, so the
# code also runs under whatever uid a platform picks; the user owns nothing in the image.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin chute
# Made before USER, so root owns it: a directory the user can't write to (`python -m` puts the
# working directory first on sys.path) holding only the data contracts (CHUTE_CONTRACTS_FILE).
WORKDIR /opt/chute
COPY contracts/ contracts/
USER 10001:10001

# The Batch job's command, exactly tasks.names.BATCH_COMMAND. CMD, not ENTRYPOINT: a Batch job
# definition can override the command but not the entrypoint (Lambda overrides both).
CMD ["python", "-m", "batch"]
