# Two commands for a newcomer: `make run` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: run test lint format bench clean messages

# Translations: each locale/<lang>/LC_MESSAGES/django.po is compiled (gettext's msgfmt) into the
# .mo Django reads; the .mo files are built, not committed.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) $(MO_FILES)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py serve --port $(PORT)

test: $(STAMP) $(MO_FILES)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

%.mo: %.po
	msgfmt --check -o $@ $<

# After changing marked strings: refresh every .po from the code and templates.
messages: $(STAMP)
	$(BIN)/python manage.py makemessages --all --no-location --no-obsolete \
		-i '.venv/*' -i 'bench/*' -i 'tests/*' -i 'docs/*' -i 'var/*' -i 'staticfiles/*' \
		-i 'azure_sim/*' -i 'chat/management/*'

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .mypy_cache $(MO_FILES)
