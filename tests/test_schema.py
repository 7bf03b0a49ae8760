"""The OpenAPI contract: valid OpenAPI 3, every API route in it, auth and error shapes described."""

import pytest
from django.urls import get_resolver
from openapi_spec_validator import validate
from rest_framework.test import APIClient


@pytest.fixture
def schema(db):
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def api_routes() -> set[str]:
    routes = set()

    def walk(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if hasattr(entry, "url_patterns"):
                walk(entry, prefix + str(entry.pattern))
            else:
                routes.add(prefix + str(entry.pattern))

    walk(get_resolver())
    return {r for r in routes if r.startswith("api/v1/") and r != "api/v1/schema/"}


def test_the_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_every_api_route_is_described(schema):
    described = {path.lstrip("/").replace("{", "<str:").replace("}", ">") for path in schema["paths"]}
    assert api_routes() <= described, api_routes() - described


def test_auth_and_errors_are_described(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["serviceToken"]["in"] == "header" and "cookieAuth" in schemes
    ingest = schema["paths"]["/api/v1/clips/"]["post"]
    assert ingest["security"] == [{"serviceToken": []}]
    for status in ("400", "401", "404", "413", "415", "422", "503"):
        assert ingest["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "429" in schema["paths"]["/api/v1/assignments/next/"]["post"]["responses"]
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail"]
