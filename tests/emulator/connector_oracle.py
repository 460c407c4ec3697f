"""Snowflake's own Python connector as the oracle for the values snowflaked returns.

Reads a JSON file of cases, each ``{"sql": ..., "columns": [...], "rows": [[...], ...]}`` as
``snowflaked query --format json`` answered them, runs every statement again through
``snowflake.connector`` (the connector fakesnow is built for) against the same emulator, in the
same database, and compares the values type by type under snowflaked's documented JSON
conventions: NULL is null, numbers keep every digit, dates and times are ISO-8601 text,
BINARY is lower-case hex, VARIANT is embedded JSON, NaN and infinities are strings.

Prints one line per mismatch and exits 1 if there was any, 0 otherwise; the Rust test that
calls it (tests: ``values_equal_the_python_connectors``) asserts the exit status.

Usage: connector_oracle.py --port PORT --database NAME CASES.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import sys
from typing import Any

import snowflake.connector

# The connector's type codes (snowflake.connector.constants.FIELD_TYPES) whose Python value is
# JSON text that snowflaked embeds as JSON.
_JSON_TYPE_CODES = {5, 9, 10}  # VARIANT, OBJECT, ARRAY


def _fraction_to_micros(text: str) -> str:
    """ISO text with any number of fraction digits, cut to Python's microseconds."""
    head, dot, rest = text.partition(".")
    if not dot:
        return text
    digits = ""
    while rest and rest[0].isdigit():
        digits, rest = digits + rest[0], rest[1:]
    return f"{head}.{digits[:6].ljust(6, '0')}{rest}"


def _iso_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(_fraction_to_micros(text.replace("Z", "+00:00")))


def same(expected: Any, got: Any, type_code: int) -> bool:  # noqa: ANN401, PLR0911
    """Whether snowflaked's JSON value `got` is the connector's value `expected`."""
    if expected is None or got is None:
        return expected is None and got is None
    if type_code in _JSON_TYPE_CODES and isinstance(expected, str):
        return json.loads(expected) == got
    if isinstance(expected, bool):
        return got is expected
    if isinstance(expected, (int, decimal.Decimal)):
        return not isinstance(got, (bool, str)) and decimal.Decimal(str(got)) == decimal.Decimal(expected)
    if isinstance(expected, float):
        if math.isnan(expected):
            return got == "NaN"
        if math.isinf(expected):
            return got == ("inf" if expected > 0 else "-inf")
        return isinstance(got, (int, float, decimal.Decimal)) and float(got) == expected
    if isinstance(expected, bytes):
        return got == expected.hex()
    if isinstance(expected, dt.datetime):
        parsed = _iso_datetime(got)
        if expected.tzinfo is None:
            return parsed.tzinfo is None and parsed == expected
        return parsed.tzinfo is not None and parsed == expected
    if isinstance(expected, dt.date):
        return got == expected.isoformat()
    if isinstance(expected, dt.time):
        return dt.time.fromisoformat(_fraction_to_micros(got)) == expected
    return got == expected


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("cases")
    args = parser.parse_args()
    with open(args.cases, encoding="utf-8") as f:
        # Numbers as exact decimals, as snowflaked wrote them.
        cases = json.load(f, parse_float=decimal.Decimal)
    connection = snowflake.connector.connect(
        user="oracle", password="not-a-secret", account="test", host="127.0.0.1", port=args.port, protocol="http"
    )
    cursor = connection.cursor()
    cursor.execute(f"USE DATABASE {args.database}")
    mismatches, compared = 0, 0
    for case in cases:
        cursor.execute(case["sql"])
        expected_rows = cursor.fetchall()
        types = [d.type_code for d in cursor.description]
        names = [d.name for d in cursor.description]
        if names != case["columns"]:
            print(f"{case['sql']}: columns {case['columns']} != the connector's {names}")
            mismatches += 1
        if len(expected_rows) != len(case["rows"]):
            print(f"{case['sql']}: {len(case['rows'])} rows != the connector's {len(expected_rows)}")
            mismatches += 1
            continue
        for r, (expected, got) in enumerate(zip(expected_rows, case["rows"], strict=True)):
            for c, type_code in enumerate(types):
                compared += 1
                if not same(expected[c], got[c], type_code):
                    print(f"{case['sql']}: row {r} column {names[c]}: snowflaked {got[c]!r} != the connector's {expected[c]!r}")
                    mismatches += 1
    print(f"compared {compared} values of {len(cases)} statements; {mismatches} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
