# The campaign manager's image. Web (gunicorn), Celery workers and beat all run it, with different commands
# (deploy/ has the Kubernetes manifests; docs/deployment.md the settings). Linted with hadolint in `make test`.
#
# BASE_IMAGE: any Debian bookworm image with CPython 3.11 and venv. The default is the official slim image;
# `make image` can build a local one from Debian's packages where no container registry is reachable.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# The same pinned requirements as `make` installs, in a virtual environment copied whole into the final stage.
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir pip==26.3 \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="campaign-manager" \
      org.opencontainers.image.description="Campaign manager for LSST data processing (web, workers, beat)"
# An unprivileged user with a fixed id (Kubernetes' runAsNonRoot checks the number).
RUN groupadd --system --gid 10001 cm \
    && useradd --system --uid 10001 --gid cm --home-dir /app --shell /usr/sbin/nologin cm
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root . /app
# BPS runs ${CTRL_MPEXEC_DIR}/bin/pipetask and ${DAF_BUTLER_DIR}/bin/butler: both are in the venv.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings_production \
    CM_STATIC_ROOT=/app/staticfiles \
    CM_VAR_DIR=/var/lib/cm \
    CTRL_MPEXEC_DIR=/opt/venv \
    DAF_BUTLER_DIR=/opt/venv
# Static files with content hashes, collected once at build time (the key only satisfies the settings here).
RUN SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/unused.sqlite3 \
        python -m django collectstatic --noinput -v 0 \
    && rm -f /tmp/unused.sqlite3 \
    && mkdir -p /var/lib/cm \
    && chown cm:cm /var/lib/cm
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
