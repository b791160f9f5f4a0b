"""The first screen: a landing page at the root, an admin that says what it is."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_root_url_leads_to_the_admin_the_api_docs_and_the_health_check(client):
    page = client.get("/").content.decode()

    assert "logicdialog webhooks" in page
    for link in ('href="/admin/"', 'href="/api/docs/"', 'href="/healthz"'):
        assert link in page


def test_the_admin_says_what_it_is_and_view_site_leads_home(admin_client):
    page = admin_client.get("/admin/").content.decode()

    assert "logicdialog webhooks" in page
    assert "Django administration" not in page
    assert '<a href="/">View site</a>' in page
