# The two commands a new user needs (README): `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test bench clean
VENV ?= .venv

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/kgp demo

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider

bench: setup
	$(VENV)/bin/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) launcher/target
