"""The update server's admin API described in OpenAPI: `/openapi.json` served beside it lists
every admin route with its answers, every schema it names is in the document, and what each
route really answers (called here on a SUP that synced) is what the document says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from upstream import stand_in_upstream, sync_runner

from updatesync import __version__
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import ROUTES, SyncRunner, admin_routes
from updatesync.updateserver.admin_openapi import OPERATIONS, openapi_routes
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app

REF = "#/components/schemas/"


@dataclass
class Served:
    url: str
    runner: SyncRunner

    def document(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/openapi.json", timeout=30)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        return answer.json()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with (
        stand_in_upstream(tmp_path, generate_catalog(15, seed=64)) as (_, mu),
        UpdateStore.open(tmp_path / "sup") as store,
    ):
        runner = sync_runner(store, mu.url)
        app = create_app(
            StoreBackend(store), extra_routes=[*admin_routes(store, runner), *openapi_routes()]
        )
        try:
            with BackgroundServer(app) as server:
                yield Served(server.url, runner)
        finally:
            runner.close()


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_document_lists_every_admin_route_with_its_answers(served: Served) -> None:
    """Finding: the update server's admin API had no OpenAPI."""
    doc = served.document()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == __version__ and doc["info"]["title"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["adminToken"] == {**schemes["adminToken"], "type": "http", "scheme": "bearer"}
    assert {next(iter(s)) for s in doc["security"]} == set(schemes)
    listed = {(path, verb.upper()) for path, ops in doc["paths"].items() for verb in ops}
    assert listed == {(path, verb) for path, verb, _ in ROUTES}
    ids = set()
    for path, verb, _ in ROUTES:
        op = doc["paths"][path][verb.lower()]
        assert op["summary"] and op["description"], (path, verb)
        ids.add(op["operationId"])
        answers = op["responses"]
        assert {"401"} <= set(answers) and {"200", "202"} & set(answers), (path, verb)
        for status, answer in answers.items():
            assert answer["description"], (path, verb, status)
            assert list(answer["content"]) == ["application/json"], (path, verb, status)
        for parameter in op.get("parameters", []):
            assert parameter["in"] == "query" and parameter["description"], parameter
            assert parameter["schema"]["type"] in ("integer", "number", "string", "array")
        if verb in ("POST", "PUT"):
            assert "415" in answers
            assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert len(ids) == len(ROUTES)  # unique
    schemas = doc["components"]["schemas"]
    refs = set(_refs(doc))
    assert refs and all(ref.startswith(REF) and ref[len(REF) :] in schemas for ref in refs)
    assert "$defs" not in json.dumps(doc)
    sync_state = schemas["SyncStateView"]
    assert sync_state["type"] == "object" and "eta_seconds" in sync_state["properties"]
    assert set(schemas["DownstreamPage"]["required"]) >= {"total", "next_offset", "items"}


def _model(path: str, verb: str, status: int) -> Any:
    answer = OPERATIONS[(path, verb)].answers.get(status)
    assert answer is not None, f"{verb} {path} answered {status}, which its document omits"
    return answer.model


CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/status", {}),
    ("GET", "/api/changes", {"params": {"since": 0}}),
    ("GET", "/api/changes", {"params": {"since": "x"}}),
    ("GET", "/api/sync", {}),
    ("GET", "/api/deployments", {"params": {"since": 0}}),
    ("GET", "/api/downstream", {}),
    ("GET", "/api/updates", {"params": {"since": 0, "language": "en"}}),
    ("GET", "/api/categories", {}),
    ("GET", "/api/configuration", {}),
    ("PUT", "/api/configuration", {"json": {"languages": ["en"]}}),
    ("PUT", "/api/configuration", {"json": {"products": ["not-a-product"]}}),
    ("PUT", "/api/configuration", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
    ("POST", "/api/sync", {"json": {}}),
    ("POST", "/api/sync", {"json": {"full": True}}),
]


def test_every_answer_is_what_the_document_says(served: Served) -> None:
    """Each route called, on a server that synced: its status is one the document lists and
    its body validates against the schema's model given for that status."""
    assert served.runner.start()
    served.runner.wait()
    assert served.runner.state.last_error is None
    seen: set[tuple[str, str]] = set()
    statuses: dict[tuple[str, str], set[int]] = {}
    with httpx.Client(base_url=served.url, timeout=30) as client:
        for verb, path, options in CALLS:
            answer = client.request(verb, path, **options)
            if verb == "POST" and answer.status_code == 202:
                served.runner.wait()  # the next call finds it running no more
            model = _model(path, verb, answer.status_code)
            TypeAdapter(model).validate_python(answer.json())
            seen.add((path, verb))
            statuses.setdefault((path, verb), set()).add(answer.status_code)
    assert seen == {(path, verb) for path, verb, _ in ROUTES}
    assert statuses[("/api/changes", "GET")] == {200, 400}
    assert statuses[("/api/configuration", "PUT")] == {200, 415, 422}
    assert statuses[("/api/sync", "POST")] == {202}


def test_swagger_ui_reads_the_document(served: Served) -> None:
    page = httpx.get(f"{served.url}/docs", timeout=30)
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "swagger-ui" in page.text.lower()
