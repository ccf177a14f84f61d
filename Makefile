# Two commands: `make run` (set up and serve the demo) and `make test` (set up and run every check).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup lint browser-deps clean demo-data benchmarks plotly-bundle serve-prod image

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

run: $(STAMP)
	DEBUG=1 $(BIN)/python scripts/run_dev.py

# The production shape on this machine (PostgreSQL + Redis): migrations, collectstatic, then gunicorn, two Celery
# workers and beat under honcho (Procfile). See README "Production" and docs/deployment.md.
serve-prod: $(STAMP)
	$(BIN)/python scripts/serve_prod.py

# The container image (Dockerfile) with podman, buildah or docker; see scripts/build_image.sh for its settings.
image:
	bash scripts/build_image.sh

demo-data: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core campaigns tagging metrics cmclient config lsst_adapter

test: $(STAMP) browser-deps
	$(BIN)/python scripts/test_env.py $(PYTEST_ARGS)

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache

# Rebuild static/vendor/plotly.min.js: plotly.js with only the trace types the dashboards draw, from the
# versions pinned in scripts/plotly_bundle/package-lock.json. Needs node and npm; the built file is
# committed, so `make run` and `make test` do not.
plotly-bundle:
	cd scripts/plotly_bundle && npm ci --no-audit --no-fund && node build.js
