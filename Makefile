# `make run`: set up and serve on the embedded SQLite database.
# `make test`: set up and run the whole test suite (SQLite, or DATABASE_URL).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ADDR   ?= 127.0.0.1:8000

.PHONY: run test lint format venv venv-dev clean

$(VENV)/.run-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

venv: $(VENV)/.run-installed
venv-dev: $(VENV)/.dev-installed

# `make run` also writes a git-ignored .env (DJANGO_DEBUG=true) if there is
# none, so `manage.py runserver` and the other commands work afterwards
# without extra environment variables. Production sets its variables itself.
run: venv
	test -f .env || printf '# Written by make run: local development only.\nDJANGO_DEBUG=true\n' > .env
	DJANGO_DEBUG=true $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=true $(PY) manage.py setup_demo
	DJANGO_DEBUG=true $(PY) manage.py runserver $(ADDR)

test: venv-dev
	-scripts/install-browser.sh  # best effort: Debian's chromium, for tests/browser
	-scripts/install-services.sh  # best effort: pgbouncer, nginx, promtool, for tests/deploy
	DJANGO_DEBUG=false $(PY) -m pytest  # whatever a development .env says

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DEBUG=true $(PY) manage.py makemigrations --check --dry-run

format: venv-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# `make bench`: every figure in BENCHMARKS.md (PostgreSQL at
# postgres@127.0.0.1:5432; databases named *bench*; ~20 min, more the first
# time while it seeds a million events). Installs Debian's wrk if missing.
.PHONY: bench bench-quick
bench: venv-dev
	command -v wrk >/dev/null || apt-get install -y wrk || sudo apt-get install -y wrk
	$(PY) bench/run_all.py

bench-quick: venv-dev
	command -v wrk >/dev/null || apt-get install -y wrk || sudo apt-get install -y wrk
	$(PY) bench/run_all.py --quick
