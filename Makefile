# Keepwarm: `make run` starts the whole service on embedded defaults; `make test` runs the whole suite.
# Both start with `make install`, which is safe to repeat.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := redis-server dovecot-imapd chromium postgresql
STAMP := $(VENV)/.installed

.PHONY: install run test check check-unit check-others lint bench clean debian-packages translations

install: debian-packages $(STAMP)

# As root on Debian: install what is missing, waiting for the apt lock instead of failing.
# Otherwise: say exactly what is missing and go on (the tests skip what cannot run).
debian-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=600 update -q && \
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing; \
	else \
		echo "NOTE: missing Debian packages:$$missing"; \
		echo "      install them with: sudo apt-get install$$missing"; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/keepwarm run

# The whole suite on SQLite, then again on a private PostgreSQL cluster, when PostgreSQL is installed, the tests
# that reach the database (marked `db` by tests/conftest.py: the others would only run the same code twice).
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then \
		echo "--- the tests that reach the database, on PostgreSQL ---"; \
		KEEPWARM_TEST_DATABASE=postgresql $(BIN)/python -m pytest -q -p no:cacheprovider -m db; \
	else \
		echo "PostgreSQL is not installed: the PostgreSQL run is skipped"; \
	fi

# The fast loop while working: lint, then the tests that are neither `slow` (processes, > 2 s) nor `browser`, the
# unit tests beside the others on the second core (each run starts its own private servers).
FAST := -q -p no:cacheprovider -m "not slow and not browser"
check: lint
	@$(MAKE) --no-print-directory -j2 -Otarget check-unit check-others

check-unit: install
	$(BIN)/python -m pytest $(FAST) tests/unit

check-others: install
	$(BIN)/python -m pytest $(FAST) --ignore=tests/unit

lint: install
	$(BIN)/ruff check service jobs tests bench
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/ingest.py

# The web pages' gettext catalogs (service/translations/): extract the marked strings, merge them into each
# language's .po (new ones come in untranslated: translate them, then run this again), compile the .mo files that
# the app reads. The .mo files are kept beside the .po so a checkout runs without this step.
TRANSLATIONS := service/translations
translations: install
	$(BIN)/pybabel extract -F $(TRANSLATIONS)/babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--project=Keepwarm -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching --width=110
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

clean:
	rm -rf $(VENV) *.egg-info
