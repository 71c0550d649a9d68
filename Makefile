# The same entry points as the README; CI runs `python3 dev.py test` through .ci/run.
.PHONY: setup run test lint bench

setup:
	python3 dev.py setup

run:
	python3 dev.py demo

test:
	python3 dev.py test

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check . || true

bench:
	python3 dev.py bench
