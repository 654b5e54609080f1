# The Quasar collector as a headless daemon. See compose.yaml for a complete deployment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml setup.py README.md ./
COPY quasar_tui ./quasar_tui
COPY providers ./providers
COPY db ./db
RUN pip install . && rm -rf /build

# Match the host user's uid (build arg) so bind-mounted 0600 secret files stay readable.
ARG QUASAR_UID=1000
RUN useradd --create-home --uid "${QUASAR_UID}" --shell /usr/sbin/nologin quasar \
    && mkdir -p /data && chown quasar /data

USER quasar
WORKDIR /home/quasar
ENV QUASAR_DATA_DIR=/data
VOLUME ["/data"]

ENTRYPOINT ["quasar", "--daemon"]
