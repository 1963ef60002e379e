"""schemathesis hooks for tests/api-fuzz/run.mjs: repairs of what the fuzzer cannot know.

Each hook changes a generated request only where the request would otherwise not be what the
fuzzer labels it, so every check keeps its meaning:

- the coverage phase draws header values from letters and digits only, so it cannot produce an
  entity tag (`"…"`) and fills an optional `If-Match` / `If-None-Match` with a placeholder such
  as `0`, yet labels the request schema-valid; such a header is dropped from a positive request
  (it is optional, so the request stays schema-valid);
- `PUT /products/{sku}` accepts `sku` in the body only when it equals the path's (the document
  says so in words; JSON Schema cannot compare a body member with a path parameter): in a
  positive request the body's `sku` is set to the path's.
"""

import json
import os
import re

import schemathesis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "src", "openapi.json"), encoding="utf-8") as f:
    _DOC = json.load(f)
_HEADER_PATTERNS = {
    name.lower(): re.compile(_DOC["components"]["parameters"][name]["schema"]["pattern"])
    for name in ("If-Match", "If-None-Match")
}


def _positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not _positive(case):
        return
    if case.headers:
        for name in list(case.headers):
            pattern = _HEADER_PATTERNS.get(name.lower())
            value = case.headers[name]
            if pattern is not None and not (isinstance(value, str) and pattern.search(value)):
                del case.headers[name]
    if (
        case.operation.method.upper() == "PUT"
        and case.operation.path == "/products/{sku}"
        and isinstance(case.body, dict)
        and "sku" in case.body
        and case.path_parameters
    ):
        case.body["sku"] = case.path_parameters.get("sku")
