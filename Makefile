# The same entry points as the README; CI runs `python3 dev.py test` through .ci/run.
.PHONY: setup run test lint bench

setup:
	python3 dev.py setup

run:
	python3 dev.py demo

test:
	python3 dev.py test

# ruff check and ruff format --check; `make test` (CI) runs them too, before the tests.
lint:
	python3 dev.py lint

bench:
	python3 dev.py bench
