"""/api/v1/docs: the operations of openapi.json as a page, each with a small form to try it (static/js/apidocs.js).

Served from this site with the site's CSP (no inline script, no CDN); without JavaScript the page still lists
every operation with its parameters and answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, render_template

from conference.core.openapi import openapi_document

bp = Blueprint("apidocs", __name__)
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    secured: bool
    parameters: list[dict[str, Any]]
    responses: list[tuple[str, str]]
    body_type: str | None = None
    body_example: str = ""
    body_fields: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"{self.method}-" + "".join(ch if ch.isalnum() else "-" for ch in self.path).strip("-")


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return dict(document["components"]["schemas"][ref.rsplit("/", 1)[-1]]) if ref else schema


def _sample(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return next((value for value in schema["enum"] if value is not None), None)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    return {"integer": 1, "boolean": False, "array": [], "object": {}}.get(str(kind), "")


def operations() -> list[Operation]:
    document = openapi_document()
    found = []
    for path, item in sorted(document["paths"].items()):
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            entry = Operation(method.upper(), path, op.get("summary", ""), (op.get("tags") or ["meta"])[0],
                              bool(op.get("security")), op.get("parameters", []),
                              [(code, answer.get("description", "")) for code, answer in op["responses"].items()])
            content = op.get("requestBody", {}).get("content", {})
            if content:
                entry.body_type = next(iter(content))
                schema = _resolve(document, content[entry.body_type]["schema"])
                properties = schema.get("properties", {})
                entry.body_fields = [name + (" *" if name in schema.get("required", []) else "")
                                     for name in properties]
                if entry.body_type == "application/json":
                    entry.body_example = json.dumps({name: _sample(_resolve(document, properties[name]))
                                                     for name in schema.get("required", [])}, ensure_ascii=False)
            found.append(entry)
    return found


@bp.route("/api/v1/docs")
def page() -> Any:
    ops = operations()
    tags = sorted({op.tag for op in ops})
    return render_template("core/api_docs.html", tags=tags, operations=ops)
