import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

pytestmark = pytest.mark.django_db

CONTRACT = Path(settings.BASE_DIR) / "docs" / "contract.md"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker) -> dict:
    """The schema as `manage.py spectacular --validate --fail-on-warn` writes it.

    The command raises on any warning or any validation error, which fails
    every test here.
    """
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def readme_errors() -> dict[int, set[str]]:
    """The "Errors" table of docs/contract.md: status → error codes."""
    section = CONTRACT.read_text().split("\n## Errors", 1)[1].split("\n## ", 1)[0]
    table: dict[int, set[str]] = {}
    for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]+) \|", section, re.M):
        table.setdefault(int(status), set()).update(re.findall(r"`(\w+)`", codes))
    return table


def test_every_api_operation_is_documented(schema):
    assert set(schema["paths"]) == {
        "/api/events/",
        "/api/events/{id}/",
        "/api/submissions/",
        "/api/submissions/{id}/",
        "/webhooks/{bot_slug}/",
    }


def test_the_webhook_documents_every_error_in_the_readme(schema):
    operation = schema["paths"]["/webhooks/{bot_slug}/"]["post"]
    documented = {
        int(status): set(
            response["content"]["application/json"]["schema"]["properties"]["error"][
                "enum"
            ]
        )
        for status, response in operation["responses"].items()
        if status != "200"
    }
    expected = readme_errors()
    del expected[405]  # only POST is routed: it has no operation to sit under

    assert len(expected) >= 7
    assert documented == expected


def test_the_webhook_request_reply_and_security(schema):
    operation = schema["paths"]["/webhooks/{bot_slug}/"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    reply = operation["responses"]["200"]["content"]["application/json"]["schema"]
    block_types = {
        block["properties"]["type"]["enum"][0]
        for block in reply["properties"]["blocks"]["items"]["oneOf"]
    }

    assert operation["security"] == [{"webhookJWT": []}]
    assert schema["components"]["securitySchemes"]["webhookJWT"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["webhookJWT"][
            "description"
        ],
    }
    assert request["required"] == ["handler"]
    assert {"handler", "formValues", "conversationId", "userId", "id"} <= set(
        request["properties"]
    )
    assert block_types == {"text", "buttons", "quickReplies", "image", "blockPointer"}
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "Retry-After" in operation["responses"]["409"]["headers"]


def test_the_read_api_documents_filters_csv_xlsx_and_errors(schema):
    operation = schema["paths"]["/api/submissions/"]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    formats = next(p for p in operation["parameters"] if p["name"] == "format")
    content = operation["responses"]["200"]["content"]

    assert {"bot", "handler", "since", "until", "conversation_id", "cursor"} <= names
    assert {"format", "labels", "excel"} <= names
    assert set(formats["schema"]["enum"]) == {"json", "csv", "xlsx"}
    assert set(content) == {"application/json", "text/csv", XLSX}
    assert content[XLSX]["schema"] == {"type": "string", "format": "binary"}
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404"}
    assert {"tokenAuth": []} in operation["security"]
    event_fields = schema["components"]["schemas"]["WebhookEvent"]["properties"]
    assert "raw_body" not in event_fields
    assert not {"secret", "previous_secret"} & set(
        schema["components"]["schemas"]["FormSubmission"]["properties"]
    )


def test_the_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/?format=json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert "/api/schema/" in html
