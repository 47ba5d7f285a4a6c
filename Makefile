# The two commands a new user needs (README): `make demo` and `make test`. Both set everything up first.
.PHONY: setup setup-recbole demo test bench clean
VENV ?= .venv

setup:
	bash scripts/setup.sh

# RecBole 1.2.1 in its own venv (.venv-recbole) for `kgp evaluate --with-recbole` and its tests.
setup-recbole: setup
	bash scripts/setup_recbole.sh

demo: setup
	$(VENV)/bin/kgp demo

test: setup setup-recbole
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider --durations=30

bench: setup
	$(VENV)/bin/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .venv-recbole launcher/target
