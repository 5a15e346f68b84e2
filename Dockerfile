# The image every `engage` service runs (docker-compose.yml): gateway, workers, topics, migrate.
# Configure it with ENGAGE_* variables only (streams/config.py); the command is the subcommand.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# README.md* : pyproject names it as the long description; the glob keeps the build working without it.
COPY pyproject.toml README.md* ./
COPY schemas ./schemas
COPY streams ./streams
COPY sinks ./sinks
RUN pip install . && rm -rf /src

# Not root; the data directory (Faust's state, the embedded store if ever used) is a volume.
RUN useradd --system --uid 10001 --home-dir /var/lib/engage engage \
    && mkdir -p /var/lib/engage \
    && chown engage /var/lib/engage
USER engage
WORKDIR /var/lib/engage
ENV ENGAGE_DATA_DIR=/var/lib/engage

EXPOSE 8080 6066
ENTRYPOINT ["engage"]
CMD ["--help"]
