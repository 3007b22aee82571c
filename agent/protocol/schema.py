"""The event JSON Schema (event.schema.json beside this module) and a small checker for its subset.

The checker covers the subset our schemas use, so devices need no jsonschema.

Supported: type (object, string, integer), const, enum, pattern, minimum, maximum, required,
properties, additionalProperties: false. Tests check it agrees with the jsonschema package.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The event JSON Schema (agent/protocol/event.schema.json)."""
    text = (
        resources.files("agent.protocol").joinpath("event.schema.json").read_text(encoding="utf-8")
    )
    result: dict[str, Any] = json.loads(text)
    return result


@lru_cache(maxsize=256)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def errors(instance: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way instance breaks schema, as 'path: reason' strings (empty when it is valid)."""
    out: list[str] = []
    if "const" in schema and not _same(instance, schema["const"]):
        out.append(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and not any(_same(instance, e) for e in schema["enum"]):
        out.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    t = schema.get("type")
    if t == "object":
        if not isinstance(instance, dict):
            return out + [f"{path}: must be an object"]
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in instance:
                out.append(f"{path}: missing required field {key!r}")
        for key, value in instance.items():
            if key in props:
                out.extend(errors(value, props[key], f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: field {key!r} is not allowed")
    elif t == "string":
        if not isinstance(instance, str):
            return out + [f"{path}: must be a string"]
        if "pattern" in schema and not _rx(schema["pattern"]).search(instance):
            out.append(f"{path}: does not match {schema['pattern']}")
    elif t == "integer":
        if isinstance(instance, bool) or not isinstance(instance, int):
            return out + [f"{path}: must be an integer"]
        if "minimum" in schema and instance < schema["minimum"]:
            out.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            out.append(f"{path}: above {schema['maximum']}")
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
