"""Validates OCSF events against the OCSF schema, with no auditlog code.

Reads one JSON event per line on stdin. Each event is checked against the JSON Schema of its
class (`class_uid`) in the OCSF version it declares (`metadata.version`), as made by the
ocsf-json-schema package from the OCSF schema it ships (no network), by jsonschema's
Draft 2020-12 validator: required attributes, types, enums, constants, and no attribute the
class does not define. Prints one JSON report:

    {"events": N, "classes": {"6003": n, ...}, "versions": {"1.3.0": n},
     "errors": [{"line": 1, "uid": "...", "path": "/src_endpoint", "message": "..."}]}

Used by the whole-system test tests/tests/e2e/stream_ocsf.rs; the environment comes from
tests/ocsf/requirements.txt (deploy/local/stack.sh install).
"""

import json
import sys
from collections import Counter

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

schemas = {}
validators = {}
report = {"events": 0, "classes": Counter(), "versions": Counter(), "errors": []}


def complain(line, event, path, message):
    uid = None
    if isinstance(event, dict) and isinstance(event.get("metadata"), dict):
        uid = event["metadata"].get("uid")
    report["errors"].append({"line": line, "uid": uid, "path": path, "message": message[:500]})


def validator_for(version, class_uid):
    if version not in schemas:
        schemas[version] = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
    key = (version, class_uid)
    if key not in validators:
        name = schemas[version].lookup_class_name_from_uid(class_uid=class_uid)
        validators[key] = Draft202012Validator(schemas[version].get_class_schema(class_name=name, profiles=[]))
    return validators[key]


for line, text in enumerate(sys.stdin, 1):
    if not text.strip():
        continue
    report["events"] += 1
    try:
        event = json.loads(text)
    except ValueError as error:
        complain(line, None, "/", "not JSON: %s" % error)
        continue
    if not isinstance(event, dict):
        complain(line, event, "/", "not a JSON object")
        continue
    metadata = event.get("metadata")
    version = metadata.get("version") if isinstance(metadata, dict) else None
    class_uid = event.get("class_uid")
    if not isinstance(version, str):
        complain(line, event, "/metadata/version", "no OCSF version declared")
        continue
    if not isinstance(class_uid, int) or isinstance(class_uid, bool):
        complain(line, event, "/class_uid", "class_uid is %r, not a class id" % (class_uid,))
        continue
    try:
        validator = validator_for(version, class_uid)
    except Exception as error:  # an unknown version or class: the package says which
        complain(line, event, "/class_uid", "no class %d in OCSF %s: %r" % (class_uid, version, error))
        continue
    report["versions"][version] += 1
    report["classes"][str(class_uid)] += 1
    for error in sorted(validator.iter_errors(event), key=lambda e: list(map(str, e.absolute_path))):
        complain(line, event, "/" + "/".join(map(str, error.absolute_path)), error.message)
    # The schema fixes the class id; the caption a reader sees must name the same class.
    title = validator.schema.get("title")
    if "class_name" in event and event["class_name"] != title:
        complain(line, event, "/class_name", "%r, but class %d is %r" % (event["class_name"], class_uid, title))

print(json.dumps(report))
