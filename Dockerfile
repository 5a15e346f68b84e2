# The image every `engage` service runs (docker-compose.yml): gateway, workers, topics, migrate.
# Configure it with ENGAGE_* variables only (streams/config.py); the command is the subcommand.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# README.md* : pyproject names it as the long description; the glob keeps the build working without it.
COPY pyproject.toml setup.py README.md* ./
COPY schemas ./schemas
COPY streams ./streams
COPY sinks ./sinks
# The package with its dependencies, then again with the hot path compiled by mypyc
# (streams/native.py; it type-checks against the dependencies, hence the second step).
# The compiler and mypy leave the image after.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . "mypy>=2.4" setuptools wheel \
    && ENGAGE_NATIVE=1 pip install --no-deps --no-build-isolation --force-reinstall . \
    && (cd / && python -c "from streams import native; assert native.mode == 'compiled', native.mode") \
    && pip uninstall -y mypy wheel \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /src

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
