"""A validator for OCSF events, driven by the schema's own files (tests/fixtures/ocsf-1.2.0,
the v1.2.0 release, unchanged): a class's attributes are the base event's, its
category's and its own, with `$include`s merged; objects follow `extends`. Checked:
every required attribute is present (profile attributes only when the event names the
profile), no attribute the class or object does not define (except inside `unmapped`,
the schema's free-form object), scalar types, arrays, enum values of `*_id`
attributes, and `at_least_one` / `just_one` constraints."""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "ocsf-1.2.0"
CLASSES = {6003: "events/application/api.json"}
SCALARS = {
    "string_t": str,
    "integer_t": int,
    "long_t": int,
    "timestamp_t": int,
    "port_t": int,
    "float_t": (int, float),
    "boolean_t": bool,
}


@cache
def _load(path: str) -> dict:
    return json.loads((SCHEMA / path).read_text())


def _dictionary() -> dict:
    return _load("dictionary.json")


def _merge(target: dict, attributes: dict, profile: str | None = None) -> None:
    for name, spec in attributes.items():
        if name == "$include":
            for include in spec if isinstance(spec, list) else [spec]:
                included = _load(include)
                _merge(target, included.get("attributes", {}), included.get("name"))
            continue
        merged = {**target.get(name, {}), **spec}
        if "enum" in target.get(name, {}) and "enum" in spec:  # the compiler unions enums
            merged["enum"] = {**target[name]["enum"], **spec["enum"]}
        if profile and include_is_profile(profile):
            merged.setdefault("profile", profile)
        target[name] = merged


def include_is_profile(name: str) -> bool:
    return (SCHEMA / "profiles" / f"{name}.json").exists()


@cache
def class_attributes(class_uid: int) -> dict:
    chain, path = [], CLASSES[class_uid]
    document = _load(path)
    chain.append(document)
    parent = document.get("extends")
    while parent:
        parent_path = next(
            p
            for p in ("events/base_event.json", f"events/application/{parent}.json")
            if _load(p).get("name") == parent
        )
        document = _load(parent_path)
        chain.append(document)
        parent = document.get("extends")
    attributes: dict = {}
    for document in reversed(chain):
        _merge(attributes, document.get("attributes", {}))
    return attributes


@cache
def object_definition(name: str) -> tuple[dict, dict]:
    document = _load(f"objects/{name}.json")
    attributes: dict = {}
    constraints: dict = {}
    if document.get("extends"):
        attributes, constraints = (dict(x) for x in object_definition(document["extends"]))
    _merge(attributes, document.get("attributes", {}))
    constraints = document.get("constraints", constraints)
    return attributes, constraints


def validate_event(event: dict) -> list[str]:
    """The problems with one event; empty when it conforms."""
    class_uid = event.get("class_uid")
    if class_uid not in CLASSES:
        return [f"class_uid {class_uid!r} is not a class this validator ships"]
    profiles = set(event.get("metadata", {}).get("profiles", []))
    return _identity_problems(event, class_uid) + _check(
        event, class_attributes(class_uid), {}, "", profiles
    )


# Set by the schema compiler from categories.json and the class's own uid, not by enums.
_COMPILED_IDS = ("class_uid", "category_uid", "type_uid")


def _identity_problems(event: dict, class_uid: int) -> list[str]:
    document = _load(CLASSES[class_uid])
    category = _load("categories.json")["attributes"][_category_of(document)]
    expected = {
        "category_uid": category["uid"],
        "class_uid": category["uid"] * 1000 + document["uid"],
        "type_uid": (category["uid"] * 1000 + document["uid"]) * 100
        + int(event.get("activity_id", -1)),
    }
    return [
        f"{name}: {event.get(name)!r}, expected {value}"
        for name, value in expected.items()
        if event.get(name) != value
    ]


def _category_of(document: dict) -> str:
    while "category" not in document:
        document = _load(f"events/application/{document['extends']}.json")
    return document["category"]


def _check(value: dict, attributes: dict, constraints: dict, where: str, profiles) -> list:
    problems = []
    for name, spec in attributes.items():
        applies = not spec.get("profile") or spec["profile"] in profiles
        if spec.get("requirement") == "required" and applies and name not in value:
            problems.append(f"{where}{name}: required")
    for name, item in value.items():
        path = f"{where}{name}"
        if not where and name in _COMPILED_IDS:
            continue  # checked by _identity_problems
        if name not in attributes:
            problems.append(f"{path}: not an attribute here")
            continue
        problems += _check_value(name, item, attributes[name], path, profiles)
    for rule, names in constraints.items():
        present = [name for name in names if name in value]
        if rule == "at_least_one" and not present:
            problems.append(f"{where or 'event'}: needs at least one of {names}")
        if rule == "just_one" and len(present) != 1:
            problems.append(f"{where or 'event'}: needs exactly one of {names}")
    return problems


def _check_value(name: str, item, spec: dict, path: str, profiles) -> list:
    defined = _dictionary()["attributes"][name]
    kind = defined["type"]
    if defined.get("is_array"):
        if not isinstance(item, list):
            return [f"{path}: must be an array"]
        return [
            p
            for i, one in enumerate(item)
            for p in _check_one(kind, one, spec, f"{path}[{i}]", profiles)
        ]
    return _check_one(kind, item, spec, path, profiles)


def _check_one(kind: str, item, spec: dict, path: str, profiles) -> list:
    if kind == "object":  # `unmapped`: free-form by definition
        return [] if isinstance(item, dict) else [f"{path}: must be an object"]
    if kind == "ip_t":
        try:
            ipaddress.ip_address(item)
        except ValueError:
            return [f"{path}: not an IP address"]
        return []
    if kind.endswith("_t"):
        base = _dictionary()["types"]["attributes"].get(kind, {}).get("type", kind)
        expected = SCALARS.get(kind) or SCALARS.get(base, str)
        if isinstance(item, bool) and expected is not bool:
            return [f"{path}: must be {kind}"]
        if not isinstance(item, expected):
            return [f"{path}: must be {kind}"]
        enum = spec.get("enum") or _dictionary()["attributes"].get(path.rsplit(".", 1)[-1], {}).get(
            "enum"
        )
        if enum and str(item) not in enum:
            return [f"{path}: {item!r} is not one of {sorted(int(k) for k in enum)}"]
        return []
    if not isinstance(item, dict):
        return [f"{path}: must be a {kind} object"]
    attributes, constraints = object_definition(kind)
    return _check(item, attributes, constraints, f"{path}.", profiles)
