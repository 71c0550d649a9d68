"""CSV exports defuse spreadsheet formulas, in one place (core/csvfile.py)."""

from __future__ import annotations

import csv
import io
import pathlib
import re

import pytest

from core.csvfile import safe_cell, to_csv

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("-5", "'-5"),  # text that looks like a number is still text a viewer typed
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("  =1+1", "'  =1+1"),  # spreadsheets skip leading spaces before the formula
        ("\uff1d1+1", "'\uff1d1+1"),  # a full-width equals sign
        ("plain text", "plain text"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (-5, -5),  # numbers the server writes stay numbers
        (12.5, 12.5),
        (0, 0),
    ],
)
def test_cells_that_start_like_a_formula_are_written_as_text(value, written):
    assert safe_cell(value) == written


def test_to_csv_round_trips_with_the_quote_and_quotes_where_needed():
    text = to_csv([["name", "n"], ['=cmd|"/c calc"!A0', -3], ["a,b", 1.5]])
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["name", "n"],
        ['\'=cmd|"/c calc"!A0', "-3"],
        ["a,b", "1.5"],
    ]


def test_every_csv_export_goes_through_the_one_helper():
    """A module that writes CSV with the csv module directly would bypass the defusing."""
    writers = re.compile(r"\bcsv\.(writer|DictWriter)\b|from csv import .*\b(writer|DictWriter)")
    # geo/demo.py writes the store import format that geo/stores.py reads back (demo data of
    # our own making, not an export for spreadsheets); defusing it would change store names.
    allowed = {"core/csvfile.py", "geo/demo.py"}
    offenders = []
    for package in ("app", "core", "geo", "game", "live", "promotions", "webhooks"):
        for path in (ROOT / package).rglob("*.py"):
            name = path.relative_to(ROOT).as_posix()
            if name not in allowed and writers.search(path.read_text(encoding="utf-8")):
                offenders.append(name)
    assert offenders == []
