import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/api/apitoken/"


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x" * 20))
    return client


def test_the_list_shows_user_and_date_never_the_key(admin_client_, make_user):
    token = Token.objects.create(user=make_user("integration"))

    listed = admin_client_.get(CHANGELIST)
    searched = admin_client_.get(CHANGELIST, {"q": "integration"})

    for response in (listed, searched):
        assert response.status_code == 200
        html = response.content.decode()
        assert "integration" in html
        assert token.key not in html


def test_drf_own_token_admin_is_gone(admin_client_):
    assert admin_client_.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_adding_a_token_never_lists_its_key(admin_client_, make_user):
    user = make_user("integration")

    added = admin_client_.post(f"{CHANGELIST}add/", {"user": user.pk}, follow=True)
    token = Token.objects.get(user=user)
    index = admin_client_.get("/admin/")  # "Recent actions" lists what was added

    assert added.status_code == 200
    assert token.key not in added.content.decode()  # the success message
    assert "API token of integration" in index.content.decode()
    assert token.key not in index.content.decode()


def test_the_key_is_on_the_tokens_own_page(admin_client_, make_user):
    user = make_user("integration")
    token = Token.objects.create(user=user)

    page = admin_client_.get(f"{CHANGELIST}{user.pk}/change/")

    assert page.status_code == 200
    assert token.key in page.content.decode()


@pytest.fixture
def token_keeper(make_user) -> tuple[User, Client]:
    """Staff with every token permission, but not a superuser."""
    keeper = make_user(
        "keeper",
        "api.add_apitoken",
        "api.view_apitoken",
        "api.change_apitoken",
        "api.delete_apitoken",
        is_staff=True,
    )
    client = Client()
    client.force_login(keeper)
    return keeper, client


def test_staff_cannot_mint_a_token_for_someone_else(token_keeper):
    keeper, client = token_keeper
    root = User.objects.create_superuser("root", password="x" * 20)

    refused = client.post(f"{CHANGELIST}add/", {"user": root.pk})
    own = client.post(f"{CHANGELIST}add/", {"user": keeper.pk})

    assert refused.status_code == 200  # the form again, with an error
    assert "Select a valid choice" in refused.content.decode()
    assert not Token.objects.filter(user=root).exists()
    assert own.status_code == 302
    assert Token.objects.filter(user=keeper).exists()


def test_staff_never_see_another_users_key(token_keeper):
    keeper, client = token_keeper
    root = User.objects.create_superuser("root", password="x" * 20)
    theirs = Token.objects.create(user=root)
    mine = Token.objects.create(user=keeper)

    listed = client.get(CHANGELIST).content.decode()
    their_page = client.get(f"{CHANGELIST}{root.pk}/change/")
    my_page = client.get(f"{CHANGELIST}{keeper.pk}/change/")

    assert "keeper" in listed
    assert "root" not in listed
    assert their_page.status_code == 302  # "does not exist", back to the index
    assert theirs.key not in their_page.content.decode()
    assert my_page.status_code == 200
    assert mine.key in my_page.content.decode()
