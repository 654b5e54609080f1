"""The API's docs page, rendered from its OpenAPI schema on the server: no script, no CDN, so it
works on a machine without internet access."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem }
code, .path { font-family: ui-monospace, monospace }
.op { border: 1px solid #ccc; border-radius: 6px; padding: .6rem 1rem; margin: 1rem 0 }
.method { font-weight: bold; margin-right: .6rem }
table { border-collapse: collapse } td, th { text-align: left; padding: .2rem .8rem .2rem 0 }
"""


def _schema_type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_schema_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    return str(schema.get("type", "any"))


def _parameters(op: dict[str, Any]) -> str:
    params = op.get("parameters") or []
    if not params:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td>"
        f"<td>{escape(_schema_type(p.get('schema', {})))}</td>"
        f"<td>{'required' if p.get('required') else ''}</td>"
        f"<td>{escape(p.get('description', ''))}</td></tr>"
        for p in params
    )
    return f"<table><tr><th>parameter</th><th>type</th><th></th><th></th></tr>{rows}</table>"


def render(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    ops = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            ops.append(
                f'<div class="op"><span class="method">{escape(method.upper())}</span>'
                f'<span class="path">{escape(path)}</span>'
                f"<p>{escape(op.get('description') or op.get('summary', ''))}</p>"
                f"{_parameters(op)}</div>"
            )
    title = escape(info.get("title", "API"))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{title} {escape(info.get('version', ''))}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        "<p>The machine-readable schema is at <a href='/openapi.json'>/openapi.json</a>.</p>"
        f"{''.join(ops)}</body></html>"
    )
