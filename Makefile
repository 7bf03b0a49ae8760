# Two commands: `make run` (demo on http://127.0.0.1:8000) and `make test` (whole suite
# on PostgreSQL with headless Chromium). Each installs what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 3

.PHONY: run test system-deps system-test-deps clean messages

# Debian packages: install only what is missing (apt-get update once, first).
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then echo "Installing:$$missing"; apt-get update -q && $(APT_INSTALL) $$missing; fi

system-test-deps: system-deps
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v xgettext >/dev/null && command -v msgfmt >/dev/null || missing="$$missing gettext"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v psql >/dev/null || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then echo "Installing:$$missing"; apt-get update -q && $(APT_INSTALL) $$missing; fi

$(VENV)/.run-deps: requirements.txt | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-test.txt $(VENV)/.run-deps
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

run: system-deps $(VENV)/.run-deps
	mkdir -p var
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	$(VENV)/bin/gunicorn annotator.wsgi --bind $(HOST):$(PORT) --workers $(WORKERS) --access-logfile - \
	  --access-logformat '%(t)s "%(m)s %(U)s" %(s)s %(b)s'

# Pytest's exit code 5 (no tests collected) counts as a failure.
test: system-test-deps $(VENV)/.test-deps
	tests/tools/with_postgres.sh $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "No tests ran: failing." >&2; exit 1; fi; exit $$rc

# The inner loop: no browser, no audio DSP, no many-thread races (markers in pytest.ini,
# applied in tests/conftest.py); each demo speech file is processed once per run; one pytest
# worker per core (pytest-xdist; each worker has its own test database).
.PHONY: test-fast
test-fast: system-test-deps $(VENV)/.test-deps
	TEST_FAST_AUDIO=1 tests/tools/with_postgres.sh $(PY) -m pytest -q -p no:cacheprovider \
	  -n auto -m "not browser and not dsp and not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "No tests ran: failing." >&2; exit 1; fi; exit $$rc

# Schemathesis against /api/v1/schema/ on a live gunicorn (see tests/tools/contract.py).
.PHONY: contract
contract: system-test-deps $(VENV)/.test-deps
	tests/tools/with_postgres.sh $(PY) tests/tools/contract.py

# Lint and import order (ruff, configured in pyproject.toml); .ci/run runs it too.
.PHONY: lint
lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var

# Translations (issue 12): collect every marked string into locale/<lang>/LC_MESSAGES/*.po
# (pages and Python: django.po; scripts: djangojs.po), then, after translating, compile the
# .mo files that are committed beside them. tests/test_i18n.py fails while a string is new,
# untranslated, fuzzy or not compiled. Needs GNU gettext (`make system-test-deps` installs it).
MESSAGES_ARGS := --ignore=tests --ignore=var --ignore=docs --ignore=.venv --add-location=file --no-obsolete
messages: $(VENV)/.run-deps
	$(PY) manage.py makemessages --all $(MESSAGES_ARGS)
	$(PY) manage.py makemessages --all -d djangojs $(MESSAGES_ARGS)
	@echo "Translate the empty and fuzzy entries, then: make compile-messages"

.PHONY: compile-messages
compile-messages: $(VENV)/.run-deps
	$(PY) manage.py compilemessages --ignore=.venv

# Privacy benchmark of the voice disguise (issues 7, 13): optional heavy dependencies in
# their own virtualenv (.venv-bench), see tests/bench/privacy/. Every preset in one run
# (about 20 min a preset on 2 busy cores, 2.5 h for all); BENCH_ARGS narrows it, e.g.
#   make bench-privacy BENCH_ARGS="--presets none,target --no-informed"
.PHONY: bench-privacy
bench-privacy: system-deps
	tests/bench/privacy/run.sh $(BENCH_ARGS)

# Audit trail at scale (issue 5): fills 10 million events into a throwaway PostgreSQL
# (or $DATABASE_URL) and times the console's queries.
.PHONY: bench-audit
bench-audit: system-test-deps $(VENV)/.test-deps
	tests/tools/with_postgres.sh $(PY) tests/bench/audit_scale.py

# Speed, scale and fault benchmarks (issue 8): see tests/bench/README.md. They print
# their tables; numbers go into the issue notes.
.PHONY: bench
bench: system-test-deps $(VENV)/.test-deps
	tests/bench/run_all.sh
