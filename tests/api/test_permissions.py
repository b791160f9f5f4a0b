import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from submissions.models import FormSubmission, WebhookEvent
from tests.api.conftest import EXPORT_PERMISSION, token_client
from tests.factories import submission_with_answers

pytestmark = pytest.mark.django_db

URLS = ["/api/submissions/", "/api/events/"]


@pytest.fixture
def stored(bot):
    submission = submission_with_answers({"name": "Ada"}, event__bot=bot)
    return {
        "/api/submissions/": f"/api/submissions/{submission.pk}/",
        "/api/events/": f"/api/events/{submission.event_id}/",
    }


@pytest.mark.parametrize("url", URLS)
def test_anonymous_gets_401_with_a_challenge(stored, url):
    client = APIClient()

    for target in (url, stored[url]):
        response = client.get(target)

        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "not_authenticated"
        assert "credentials were not provided" in response.json()["detail"]


def test_an_unknown_token_gets_401(stored):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    response = client.get("/api/submissions/")

    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": "Invalid token.",
    }


@pytest.mark.parametrize("url", URLS)
def test_staff_without_the_view_permission_gets_403(make_user, stored, url):
    client = APIClient()
    client.force_login(make_user("staff", is_staff=True))

    response = client.get(url)

    assert response.status_code == 403
    assert response.json() == {
        "error": "permission_denied",
        "detail": "You do not have permission to view these records.",
    }


def test_each_model_needs_its_own_view_permission(make_user, stored):
    client = token_client(make_user("forms-only", "submissions.view_formsubmission"))

    assert client.get("/api/submissions/").status_code == 200
    assert client.get(stored["/api/submissions/"]).status_code == 200
    assert client.get("/api/events/").status_code == 403
    assert client.get(stored["/api/events/"]).status_code == 403


@pytest.mark.parametrize("url", URLS)
def test_a_token_with_the_view_permission_reads(client_for_reader, stored, url):
    response = client_for_reader.get(url)

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
    assert client_for_reader.get(stored[url]).status_code == 200


def test_a_logged_in_superuser_reads_through_the_session(stored):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", password="x" * 20))

    assert client.get("/api/events/").status_code == 200


@pytest.mark.parametrize(
    ("query", "headers"),
    [("?format=csv", {}), ("", {"HTTP_ACCEPT": "text/csv"})],
)
def test_csv_needs_the_export_permission(client_for_reader, stored, query, headers):
    response = client_for_reader.get(f"/api/submissions/{query}", **headers)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert EXPORT_PERMISSION in response.json()["detail"]


def test_csv_with_the_export_permission(client_for_exporter, stored):
    response = client_for_exporter.get("/api/submissions/?format=csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_are_405_for_readers_and_superusers_alike(
    client_for_exporter, make_user, stored, method
):
    superuser = token_client(
        User.objects.create_superuser("root-405", password="x" * 20)
    )
    for client in (client_for_exporter, superuser):
        for target in ("/api/submissions/", stored["/api/events/"]):
            response = getattr(client, method)(target, {})

            assert response.status_code == 405
            assert response.json()["error"] == "method_not_allowed"
    assert FormSubmission.objects.count() == 1
    assert WebhookEvent.objects.count() == 1


def test_the_webhook_keeps_its_own_authentication(api_client, deliver, bot):
    # A staff session on the same client: were the API's session
    # authentication applied to the webhook, CSRF would refuse the POST.
    api_client.force_login(User.objects.create_superuser("root", password="x" * 20))

    response = deliver({"handler": "save-form", "formValues": {"a": "b"}})
    unsigned = deliver({"handler": "save-form"}, token=None)

    assert response.status_code == 200
    assert unsigned.status_code == 401
    assert unsigned.json()["error"] == "missing_token"
    assert unsigned["WWW-Authenticate"].startswith("Bearer")
