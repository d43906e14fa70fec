# The one image of the compose stack: the code location's gRPC server, the
# webserver, the daemon and every run container (DockerRunLauncher) start from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

# Dependencies first, from pyproject.toml alone with an empty package, so a code
# change rebuilds only the last layers. The project is built outside the working
# directory: the code runs from site-packages, as installed, never from a source
# tree that could hide a file missing from the package.
COPY pyproject.toml /tmp/greenstream/
RUN mkdir /tmp/greenstream/greenstream_dagster \
    && touch /tmp/greenstream/greenstream_dagster/__init__.py \
    && pip install /tmp/greenstream \
    && pip uninstall --yes greenstream-dagster \
    && rm -rf /tmp/greenstream

# README.md* is the package's long description: optional, so its absence breaks nothing.
COPY pyproject.toml README.md* /tmp/greenstream/
COPY greenstream_dagster /tmp/greenstream/greenstream_dagster
RUN pip install --no-deps /tmp/greenstream && rm -rf /tmp/greenstream

RUN mkdir -p "$DAGSTER_HOME"
COPY deploy/dagster.docker.yaml /opt/dagster/dagster_home/dagster.yaml

WORKDIR /opt/dagster/app
COPY deploy/workspace.docker.yaml /opt/dagster/app/workspace.docker.yaml

# 4000: the code location's gRPC server; 3000: the webserver.
EXPOSE 4000 3000

CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "greenstream_dagster.definitions", "--location-name", "greenstream"]
