"""Every JSON route under /api/v1 documents the shape of its success response in /openapi.json: a response
model (a ``$ref`` or an object with properties, or an array of them), never ``{}`` or a bare
``additionalProperties`` object — so /docs shows real fields and the response is filtered through a model."""

from __future__ import annotations

from typing import Any

# (method, path) → why it documents no JSON object.
NO_JSON_BODY = {
    ("get", "/api/v1/files/{token}"): "a file download: the stored bytes, with the upload's verified type",
    ("get", "/api/v1/internal-chats/files/{token}"): "a staff chat's picture or file: the stored bytes, verified type",
    ("get", "/api/v1/calls/recordings/{recording_id}"): "a call's recording: WAV audio for the browser's player",
    ("get", "/api/v1/ivr/prompts/{key}/audio"): "an IVR prompt's uploaded recording: WAV audio for the browser's player",
    ("get", "/api/v1/reports/{key}/export"): "a report file download: xlsx or PDF",
    ("get", "/api/v1/report-files/{file_id}"): "a stored scheduled report (日报/周报): xlsx or PDF",
    ("get", "/api/v1/training/materials/{material_id}/file"): "a training material's uploaded document: the stored bytes",
}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _shapeless(schema: dict[str, Any], components: dict[str, Any]) -> str | None:
    """Why ``schema`` documents no shape, or None when it names its fields."""
    schema = _resolve(schema, components)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            reasons = [_shapeless(s, components) for s in schema[key] if s.get("type") != "null"]
            return next((r for r in reasons if r), None) if reasons else "only null"
    if schema.get("type") == "array":
        return _shapeless(schema.get("items", {}), components)
    if schema.get("properties"):
        return None
    return f"no properties: {schema}"


async def test_every_api_route_documents_its_response_shape(client) -> None:
    document = (await client.get("/openapi.json")).json()
    components = document.get("components", {}).get("schemas", {})
    shapeless: list[str] = []
    seen_exempt: set[tuple[str, str]] = set()
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in operations.items():
            if (method, path) in NO_JSON_BODY:
                seen_exempt.add((method, path))
                continue
            success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            assert success, f"{method.upper()} {path} documents no 2xx response"
            for code, response in success.items():
                if code == "204":  # no content
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                reason = "no JSON schema" if schema is None else _shapeless(schema, components)
                if reason:
                    shapeless.append(f"{method.upper()} {path} {code}: {reason}")
    assert not shapeless, "responses without a model:\n" + "\n".join(sorted(shapeless))
    assert seen_exempt == set(NO_JSON_BODY), f"stale exemptions: {set(NO_JSON_BODY) - seen_exempt}"
