# Two commands on a fresh machine: `make app` (dashboard on the embedded demo) and `make test`.
# Both create .venv on first use and install everything into it (torch pinned to the CPU wheel).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: app test install lint clean-cache

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

app: $(STAMP)
	$(BIN)/streamlit run app/main.py --server.port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean-cache:
	rm -rf $${BHPVAS_CACHE_DIR:-$$HOME/.cache/bhpvas}
