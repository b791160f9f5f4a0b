"""Lists at any size: estimated and capped counts."""

import pytest
from django.core.paginator import EmptyPage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from submissions.admin import bigtable
from submissions.admin.bigtable import EstimatedCountPaginator
from submissions.admin.submissions import FormSubmissionAdmin
from submissions.models import FormSubmission, WebhookEvent
from submissions.selectors.search import table_row_estimate
from submissions.services import partitions
from tests.factories import (
    WebhookEventFactory,
    bulk_submissions,
)
from tests.submissions.admin.helpers import (
    BOTS,
    EVENTS,
    SUBMISSIONS,
)

pytestmark = pytest.mark.django_db


# --- bots ------------------------------------------------------------------------


# --- events ----------------------------------------------------------------------


# --- submissions -----------------------------------------------------------------


class TestEstimatedCount:
    def test_unfiltered_list_uses_the_estimate_for_a_big_table(self, monkeypatch, bot):
        monkeypatch.setattr(bigtable, "table_row_estimate", lambda **kwargs: 3_000_000)
        WebhookEventFactory(bot=bot)

        with CaptureQueriesContext(connection) as queries:
            count = EstimatedCountPaginator(WebhookEvent.objects.all(), 100).count

        assert count == 3_000_000
        assert not any("COUNT(" in q["sql"].upper() for q in queries)

    def test_filtered_and_small_lists_count_exactly(self, monkeypatch, bot):
        WebhookEventFactory(bot=bot, status=WebhookEvent.Status.FAILED)
        WebhookEventFactory(bot=bot)
        monkeypatch.setattr(bigtable, "table_row_estimate", lambda **kwargs: 3_000_000)
        filtered = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)

        assert EstimatedCountPaginator(filtered, 100).count == 1

        monkeypatch.setattr(bigtable, "table_row_estimate", lambda **kwargs: 10)
        assert EstimatedCountPaginator(WebhookEvent.objects.all(), 100).count == 2

    def test_the_estimate_comes_from_postgresql_only(self):
        estimate = table_row_estimate(model=WebhookEvent)

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE submissions_webhookevent")
            assert isinstance(table_row_estimate(model=WebhookEvent), int)
        else:
            assert estimate is None

    def test_a_partitioned_table_is_estimated_from_its_partitions(self, bot):
        """Autovacuum analyses partitions, never their parent: the estimate of a
        parent never analysed is its partitions' sum."""
        if connection.vendor != "postgresql" or not partitions.is_partitioned():
            pytest.skip("partitions are PostgreSQL's")
        WebhookEventFactory.create_batch(3, bot=bot)
        names = [p.name for p in partitions.partitions_list(partitions.EVENTS)]
        with connection.cursor() as cursor:
            for name in names:  # as autovacuum would: each partition alone
                cursor.execute(f'ANALYZE "{name}"')
            cursor.execute(
                "SELECT sum(reltuples) FILTER (WHERE reltuples >= 0)::bigint "
                "FROM pg_class WHERE relname = ANY(%s)",
                [names],
            )
            (expected,) = cursor.fetchone()
        assert expected is not None
        assert table_row_estimate(model=WebhookEvent) == expected

    def test_the_changelist_never_counts_the_whole_table(self, admin_client, bot):
        WebhookEventFactory(bot=bot, status=WebhookEvent.Status.FAILED)

        with CaptureQueriesContext(connection) as queries:
            admin_client.get(EVENTS, {"status__exact": "failed"})

        counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) == 1  # the filtered count, never the full one
        assert "status" in counts[0]


class TestCappedCount:
    @pytest.fixture
    def cap_at_3(self, monkeypatch):
        monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 3)
        monkeypatch.setattr(FormSubmissionAdmin, "list_per_page", 2)

    def test_a_big_filtered_list_is_counted_up_to_the_cap(self, cap_at_3, bot):
        bulk_submissions(5, bot=bot, answers=lambda i: {"a": i})
        filtered = FormSubmission.objects.filter(bot=bot).order_by("-submitted_at")

        with CaptureQueriesContext(connection) as queries:
            paginator = EstimatedCountPaginator(filtered, 2)
            count = paginator.count

        assert count == 3
        assert str(count) == "3+"
        assert paginator.capped
        assert "LIMIT 4" in queries[0]["sql"].upper()
        # Pages past the cap still open, with the rows that are there.
        assert [s.pk for s in paginator.page(3).object_list] == [
            s.pk for s in filtered[4:6]
        ]

    def test_a_list_within_the_cap_is_exact(self, cap_at_3, bot):
        bulk_submissions(3, bot=bot, answers=lambda i: {"a": i})
        paginator = EstimatedCountPaginator(FormSubmission.objects.filter(bot=bot), 2)

        assert paginator.count == 3
        assert str(paginator.count) == "3"
        assert not paginator.capped
        with pytest.raises(EmptyPage):
            paginator.page(3)

    def test_the_changelist_says_capped_counts_honestly_and_pages_work(
        self, cap_at_3, admin_client, bot
    ):
        made = bulk_submissions(7, bot=bot, answers=lambda i: {"note": f"invoice {i}"})
        newest_first = sorted(made, key=lambda s: s.submitted_at, reverse=True)

        first = admin_client.get(SUBMISSIONS, {"q": "invoice"})
        beyond = admin_client.get(SUBMISSIONS, {"q": "invoice", "p": "4"})

        text = first.content.decode()
        assert "3+ results" in text
        assert "3+ form submissions" in text
        assert "?p=2&amp;q=invoice" in text  # the page links
        assert [s.pk for s in first.context["cl"].result_list] == [
            s.pk for s in newest_first[:2]
        ]
        assert beyond.status_code == 200
        assert [s.pk for s in beyond.context["cl"].result_list] == [newest_first[6].pk]


@pytest.mark.parametrize("term", ["\u00b2", "\u0665", "9" * 30, "12"])
@pytest.mark.parametrize("url", [EVENTS, SUBMISSIONS])
def test_a_search_for_any_digits_is_answered(admin_client, url, term):
    assert admin_client.get(url, {"q": term}).status_code == 200


@pytest.mark.parametrize("selected", ["abc", "\u00b2", "1\x00", str(10**23), "-1"])
@pytest.mark.parametrize(
    ("url", "action"),
    [
        (EVENTS, "replay_selected"),
        (SUBMISSIONS, "export_as_csv"),
        (BOTS, "rotate_secret"),
    ],
)
def test_an_action_on_ids_that_are_not_ids_is_refused_kindly(
    admin_client, bot, url, action, selected
):
    response = admin_client.post(
        url, {"action": action, "_selected_action": [selected]}, follow=True
    )
    assert response.status_code == 200
    assert "not valid ids" in response.content.decode()
