# promoter: a first image. It installs the package with its runtime dependencies and, by
# default, prints the CLI's help. The example dry source is copied too, so `promoter demo`
# works inside the container:  docker run --rm promoter demo --workdir /tmp/demo
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user: promoter scores untrusted SavedModels and must not run as root.
RUN useradd --create-home --uid 10001 promoter
WORKDIR /opt/promoter

COPY pyproject.toml README.md ./
COPY promoter ./promoter
COPY promoter.yaml ./
COPY environments ./environments
COPY policies ./policies
COPY manifests ./manifests
RUN pip install --editable . && promoter --help >/dev/null

USER promoter
# Compile the TFRecord decoder's kernels once, into the user's ~/.cache/numba.
RUN python -c "from promoter.evaluation.example_codec import compile_kernels; compile_kernels()"
ENTRYPOINT ["promoter"]
CMD ["--help"]
