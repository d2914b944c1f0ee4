"""Schemathesis hooks for Rapport's conformance run (.ci/conformance).

Rapport streams exports as NDJSON (`application/x-ndjson`: one JSON value per line, each
documented by the response schema) and takes NDJSON and CSV import files as text. Schemathesis
knows neither media type, so these hooks teach it: a serializer that sends a generated file
as it is, and a check that validates every line of an NDJSON answer against its schema.
"""

import json

import jsonschema_rs
import schemathesis

NDJSON = "application/x-ndjson"


@schemathesis.serializer(NDJSON)
def ndjson_body(ctx, value):
    """An import file: the generated text as it is; other values one JSON document a line."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    rows = value if isinstance(value, list) else [value]
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")


def _line_schema(case, response):
    """The documented schema of one line of this NDJSON answer, or None if undocumented."""
    operation = case.operation.definition.raw
    documented = operation.get("responses", {}).get(str(response.status_code))
    if documented is None:
        return None
    media = documented.get("content", {}).get(NDJSON)
    return None if media is None else media.get("schema")


@schemathesis.check
def ndjson_lines_conformance(ctx, response, case):
    """Every line of an NDJSON answer is JSON matching the documented line schema."""
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if content_type != NDJSON:
        return None
    schema = _line_schema(case, response)
    if schema is None:
        return None
    spec = case.operation.schema.raw_schema
    validator = jsonschema_rs.Draft202012Validator(
        {**schema, "components": spec.get("components", {})}
    )
    # Lines end at "\n" only: str.splitlines() would also split inside strings at U+2028
    # and other characters JSON leaves unescaped.
    for number, line in enumerate(response.content.decode("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            raise AssertionError(f"line {number} is not JSON: {error}") from None
        for error in validator.iter_errors(value):
            path = "/".join(map(str, error.instance_path)) or "(root)"
            raise AssertionError(f"line {number} does not match its schema at {path}: {error.message}")
    return True
