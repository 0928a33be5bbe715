# promoter's image: `promoter serve` in the cluster (deploy/), or any other command.
#
#   docker build -t promoter:0.1.0 .
#   docker run --rm promoter:0.1.0 --help
#   docker run --rm promoter:0.1.0 demo --workdir /tmp/demo
#
# Two stages: the first installs promoter and its dependencies into a virtual environment,
# the second is the same base image with git (GitPython runs it) and that environment, and no
# pip cache or build leftovers. The base image is pinned to an exact Python patch release and
# Debian release; pin its digest as well (`FROM python:...@sha256:...`) where the registry is
# reachable when you build. tests/test_dockerfile.py checks this file statically.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/promoter
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY promoter ./promoter
# The example dry source beside the package: `promoter demo` finds it there.
COPY promoter.yaml ./
COPY environments ./environments
COPY policies ./policies
COPY manifests ./manifests
# Editable: the package stays at /opt/promoter next to the example, at the same path in the
# runtime stage.
RUN /opt/venv/bin/pip install --editable . \
    && /opt/venv/bin/promoter --help >/dev/null

# The `fetch` target: the serving pods' init container, `promoter-fetch-model`
# (promoter/model_store/fetch.py), in an image of its own so that serving pods do not pull
# TensorFlow twice: promoter without its dependencies, and only the object-store clients the
# command imports (the same bounds as pyproject.toml; tests/test_dockerfile.py compares them).
#
#   docker build --target fetch -t promoter-fetch-model:0.1.0 .
#
# Push it where the cluster pulls from and set `serving.fetchImage` to it.
FROM ${PYTHON_IMAGE} AS fetch-build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/promoter
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY promoter ./promoter
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip install "s3fs>=2026.9" "gcsfs>=2026.10" "aiobotocore>=3.10,<3.11" \
    && /opt/venv/bin/promoter-fetch-model --help >/dev/null

FROM ${PYTHON_IMAGE} AS fetch
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# The uid the rendered init container runs as (runAsUser: 10001, runAsNonRoot).
RUN groupadd --gid 10001 promoter \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin promoter
COPY --from=fetch-build /opt/venv /opt/venv
USER 10001:10001
ENTRYPOINT ["promoter-fetch-model"]

# The default target: promoter itself.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PATH=/opt/venv/bin:$PATH \
    PROMOTER_CACHE_DIR=/var/cache/promoter \
    NUMBA_CACHE_DIR=/var/cache/numba

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user with a fixed uid (deploy/ runs the pod as 10001): promoter scores
# untrusted SavedModels and must not run as root.
RUN groupadd --gid 10001 promoter \
    && useradd --uid 10001 --gid 10001 --home-dir /home/promoter --create-home \
       --shell /usr/sbin/nologin promoter \
    && mkdir -p /var/cache/promoter /var/cache/numba \
    && chown 10001:10001 /var/cache/promoter /var/cache/numba

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/promoter /opt/promoter
WORKDIR /opt/promoter

USER 10001:10001
# Compile the TFRecord decoder's kernels once, into $NUMBA_CACHE_DIR (in the cluster that is
# an emptyDir, so each pod compiles them once, about 10 s, at its first TFRecord holdout).
RUN python -c "from promoter.evaluation.example_codec import compile_kernels; compile_kernels()"

ENTRYPOINT ["promoter"]
CMD ["--help"]
