"""The CSV lines PostgreSQL writes are the ones Python writes, byte for byte.

``selectors.export_lines`` writes each line in the database where it can be
sure of it and leaves the rest to ``exports.export_rows``; these tests store
answers made to tell the two apart (formula look-alikes in every script,
quotes, line breaks, numbers of every shape, lists, objects, repeated and
missing questions) and compare both exports whole. Other tests check that
the database really writes the lines it should, so the equality is not
Python's with itself.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from submissions.exports import (
    ExportColumn,
    ExportOptions,
    csv_lines,
    csv_streaming_response,
    csv_text,
    export_rows,
    text_chunks,
)
from submissions.models import FormAnswer, FormSubmission
from submissions.selectors import export_chunks
from submissions.selectors.export_chunks import chunk_end, postgres_csv_lines
from submissions.selectors.export_lines import (
    LINES_CHUNK_SIZE,
    PYTHON_SPACES,
    chunk_lines,
    chunk_size_for,
    csv_cell,
    database_lines,
)
from submissions.selectors.exports import (
    submission_csv_lines,
    submission_export_columns,
    submission_export_iter,
)
from tests.factories import BotFactory, FormAnswerFactory, FormSubmissionFactory

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL writes the lines; elsewhere export_rows does (test_exports)",
)

WHEN = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)

#: Answers whose cells are easy to get wrong.
TEXTS = [
    "",
    "plain",
    "a,b",
    'say "hi"',
    'a"b,c\nd',
    "line\nbreak",
    "cr\rhere",
    "cr lf\r\n",
    "=1+1",
    "+33 6 12 34 56 78",
    "-5",
    "-5.5e3",
    "+.5",
    "-",
    "+",
    "@user",
    "\uff1dSUM(A1)",
    "\uff0b1",
    "\uff0d1",
    "\uff20x",
    "\t=x",
    "\tplain",
    "\r=x",
    "\n=1",
    " =x",
    "\u3000=x",
    "\u00a0-1",
    "\x1c+1",
    "\x85@x",
    " x",
    "  ",
    "\u2003",
    "-\u0661\u0662",  # Arabic-Indic digits: Python's \\d says a number
    "-\u0661x",
    "=\u00e9",
    "\u00e9t\u00e9",
    "\u65e5\u672c\u8a9e",
    "emoji \U0001f389, too",
    "'quoted",
    "1e5",
    "-5\n",
    "\\.",
    "x" * 5000 + ",end",
    "-1" + "0" * 400,
]
VALUES: list[Any] = [
    *TEXTS,
    0,
    7,
    -3,
    10**20,
    2**63,
    -(10**30),
    1.5,
    -0.0,
    3.0,
    1e-7,
    1e300,
    float("nan"),
    float("-inf"),
    True,
    False,
    None,
    [],
    ["a"],
    ["a", "b"],
    ["=x", "y"],
    ["a,b", 'c"'],
    [""],
    ["", ""],
    [1, 2],
    ["a", None],
    [["nested"]],
    [True],
    [{"k": 1}],
    {},
    {"a": 1},
    {"b": "x", "a": [1, "=2"]},
    {"\u00e9": "\u00fc, \u00e7a"},
]
#: Ids, names and slugs whose cells are easy to get wrong.
NAMES = ["c-1", "=cmd", "-1", "-\u0661", "a,b", 'q"q', "\u3000@x", "", "\u00e9"]


def store(
    answers: list[tuple[str, Any]],
    *,
    at: datetime = WHEN,
    bot: Any = None,
    **fields: Any,
) -> FormSubmission:
    """A submission with ``answers`` (key, value) in that order, at ``at``."""
    kwargs: dict[str, Any] = {
        "event__received_at": at,
        "submitted_at": at,
        "received_at": at,
    }
    if bot is not None:
        kwargs["event__bot"] = bot
    submission = FormSubmissionFactory(**kwargs, **fields)
    for position, (key, value) in enumerate(answers):
        FormAnswerFactory(
            submission=submission, position=position, key=key, label=key, value=value
        )
    return submission


def python_csv(
    submissions: Any, columns: list[ExportColumn], options: ExportOptions
) -> str:
    rows = submission_export_iter(submissions=submissions)
    return "".join(
        csv_lines(
            csv_text(export_rows(columns=columns, submissions=rows, options=options))
        )
    )


def database_csv(
    submissions: Any,
    columns: list[ExportColumn],
    options: ExportOptions,
    chunk_size: int | None = None,
    workers: int | None = None,
) -> str:
    return "".join(
        postgres_csv_lines(
            submissions=submissions,
            columns=columns,
            options=options,
            chunk_size=chunk_size,
            workers=workers,
        )
    )


def assert_same(
    options: ExportOptions = ExportOptions(),  # noqa: B008 - frozen
    *,
    submissions: Any = None,
    columns: list[ExportColumn] | None = None,
    chunk_size: int | None = None,
    workers: int | None = None,
) -> str:
    """Both exports of ``submissions`` (all by default); returns the text."""
    if submissions is None:
        submissions = FormSubmission.objects.all()
    if columns is None:
        columns = submission_export_columns(submissions=submissions)
    expected = python_csv(submissions, columns, options)
    written = database_csv(submissions, columns, options, chunk_size, workers)
    if written != expected:  # a readable failure: the first lines that differ
        pairs = zip(expected.split("\r\n"), written.split("\r\n"), strict=False)
        wrong = [(want, got) for want, got in pairs if want != got][:3]
        pytest.fail(f"lines differ (python, database): {wrong!r}")
    return written


def test_python_spaces_are_exactly_what_isspace_says():
    spaces = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert spaces == PYTHON_SPACES


def test_a_chunk_holds_fewer_submissions_the_wider_the_form():
    assert chunk_size_for(5) == LINES_CHUNK_SIZE
    assert chunk_size_for(1000) == 250
    assert chunk_size_for(10**6) == 100  # never fewer
    assert chunk_size_for(0) == LINES_CHUNK_SIZE


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize(
    "options",
    [
        ExportOptions(),
        ExportOptions(escape_formulas=False),
        ExportOptions(labels=True),
    ],
    ids=["escaped", "unescaped", "labels"],
)
def test_every_tricky_answer_is_written_as_python_writes_it(options):
    for n, value in enumerate(VALUES):
        store([("q", value), ("n", n)], at=WHEN + timedelta(seconds=n))
    text = assert_same(options)
    assert text.count("\r\n") >= len(VALUES) + 1


@postgres_only
@pytest.mark.django_db
def test_tricky_ids_names_slugs_and_times_are_written_as_python_writes_them():
    bots = [BotFactory(slug="plain-bot"), BotFactory(slug="-bot")]
    for n, name in enumerate(NAMES):
        store(
            [("q", "x")],
            at=WHEN + timedelta(microseconds=n * 250_001),  # some with no fraction
            bot=bots[n % 2],
            handler_name=name or "h",
            conversation_id=name,
            user_id=NAMES[-1 - n],
        )
    for n, moment in enumerate(
        [
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        ]
    ):
        store([("q", n)], at=moment)
    assert_same()


@postgres_only
@pytest.mark.django_db
def test_the_database_writes_the_lines_it_is_sure_of_and_leaves_the_rest():
    sure = [
        "plain",
        "a,b",
        'say "hi"',
        "line\nbreak",
        "=1+1",
        "-5",
        "\u3000=x",  # spaces, then a formula
        "=\u00e9",
        "\u00e9t\u00e9",
        "-1" + "0" * 400,
        7,
        10**20,
        True,
        None,
        [],
        ["a", "b"],
    ]
    unsure = [
        "-\u0661\u0662",  # a sign, then other scripts' digits: a number?
        "+\u00e9",
        1.5,
        3.0,
        [1, 2],
        [["nested"]],
        {"a": 1},
    ]
    stored = {}
    for n, value in enumerate([*sure, *unsure]):
        stored[n] = store([("q", value)], at=WHEN + timedelta(seconds=n)).pk
    repeated = store([("q", "a"), ("q", "b")], at=WHEN + timedelta(hours=1)).pk
    columns = [ExportColumn(key="q")]

    rows = database_lines(FormSubmission.objects.all(), columns, ExportOptions())

    lines = {pk: line for pk, _, line in rows}
    assert [lines[stored[n]] is not None for n in range(len(sure))] == [True] * len(
        sure
    )
    assert [lines[stored[len(sure) + n]] for n in range(len(unsure))] == [None] * len(
        unsure
    )
    assert lines[repeated] is None
    assert lines[stored[0]].endswith(",plain\r\n")
    assert lines[stored[4]].endswith(",'=1+1\r\n")
    assert_same(columns=columns)


@postgres_only
@pytest.mark.django_db
def test_missing_and_unknown_questions_and_no_answers_at_all():
    store([("b", "only b")], at=WHEN)
    store([], at=WHEN + timedelta(seconds=1))
    store([("c", 3), ("a", "first"), ("z", "dropped")], at=WHEN + timedelta(seconds=2))
    store([("a", "x"), ("b", "y"), ("c", "z")], at=WHEN + timedelta(seconds=3))
    columns = [ExportColumn(key=key) for key in ("a", "b", "c")]

    rows = database_lines(FormSubmission.objects.all(), columns, ExportOptions())

    assert [line.split(",", 6)[6] for _, _, line in rows] == [
        ",only b,\r\n",
        ",,\r\n",
        "first,,3\r\n",
        "x,y,z\r\n",
    ]
    assert_same(columns=columns)


@postgres_only
@pytest.mark.django_db
def test_chunks_keep_the_order_across_ties_and_lines_python_writes():
    for n in range(23):
        # Ties on submitted_at across chunk edges, a line Python writes in most.
        value = {"n": n} if n % 4 == 0 else f"answer {n}"
        store([("q", value)], at=WHEN + timedelta(seconds=n // 6))
    text = assert_same(chunk_size=5)

    ids = [int(line.split(",", 1)[0]) for line in text.split("\r\n")[1:-1]]
    expected = list(
        FormSubmission.objects.order_by("submitted_at", "id").values_list(
            "id", flat=True
        )
    )
    assert ids == expected


@postgres_only
@pytest.mark.django_db
def test_a_big_form_is_written_whole_in_small_chunks():
    for n in range(3):
        submission = store([], at=WHEN + timedelta(seconds=n))
        FormAnswer.objects.bulk_create(
            FormAnswer(
                submission=submission,
                position=q,
                key=f"q{q:05d}",
                value=f"answer {q}" if (q + n) % 7 else q,
                value_text="",
                received_at=submission.received_at,
            )
            for q in range(2_000 + n)  # the last question only some answered
        )
    columns = submission_export_columns(submissions=FormSubmission.objects.all())

    text = assert_same(columns=columns)

    assert len(columns) == 2_002
    assert chunk_size_for(len(columns)) == 124  # 250,000 cells
    assert [line.count(",") for line in text.split("\r\n")[1:-1]] == [2_007] * 3


@postgres_only
@pytest.mark.django_db
def test_a_filtered_export_reads_the_answers_of_its_own_submissions_only():
    mine, theirs = BotFactory(slug="mine"), BotFactory(slug="theirs")
    for n in range(30):
        store(
            [("q", f"{'mine' if n % 5 == 0 else 'theirs'} {n}")],
            at=WHEN + timedelta(seconds=n),
            bot=mine if n % 5 == 0 else theirs,
        )
    submissions = FormSubmission.objects.filter(bot=mine)

    text = assert_same(submissions=submissions, chunk_size=4)

    assert text.count("mine") == 6 * 2  # the slug and the answer
    assert "theirs" not in text


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("escape", [True, False], ids=["escaped", "unescaped"])
def test_masked_cells_are_masked_in_their_place_as_python_masks_them(escape):
    masked = [
        "ada@example.com",
        "+44 20 7946 0123",
        "=HYPERLINK(x)",
        "a,b",
        'q"q',
        "",
        "  ",
        None,
        [],
        [""],
        ["x@y.z", "w"],
        7,
        True,
        "\uffff",  # the database's own place-holder, as a masked answer
    ]
    for n, value in enumerate(masked):
        store(
            [("email", value), ("name", f"=name {n}"), ("phone", f"+1 555 01{n:02d}")],
            at=WHEN + timedelta(seconds=n),
        )
    store([("name", "no email")], at=WHEN + timedelta(minutes=1))
    # The place-holder in a cell of its own: that line is Python's.
    store([("email", "b@c.d"), ("name", "x\uffffy")], at=WHEN + timedelta(hours=1))
    submissions = FormSubmission.objects.all()
    columns = submission_export_columns(submissions=submissions)
    options = ExportOptions(
        escape_formulas=escape, masked_keys=frozenset({"email", "phone"})
    )

    rows = database_lines(submissions, columns, options)
    text = assert_same(options)

    assert sum(line is None for _, _, line in rows) == 1  # the place-holder's
    assert "a***@example.com" in text
    assert "ada@example.com" not in text
    assert "+1 *** *** 100" in text
    assert "x\uffffy" in text
    assert "\uffff" not in text.replace("\uffff***", "").replace("x\uffffy", "")


@pytest.mark.django_db
def test_every_database_writes_the_same_csv():
    """On SQLite too: ``submission_csv_lines`` is the header, then a line each."""
    store([("q", "=x"), ("r", ["a", "b"])])
    submissions = FormSubmission.objects.all()
    columns = submission_export_columns(submissions=submissions)

    text = "".join(
        submission_csv_lines(
            submissions=submissions, columns=columns, options=ExportOptions()
        )
    )

    assert text == python_csv(submissions, columns, ExportOptions())
    assert text.endswith(",'=x,a; b\r\n")


# --- on several connections at once ---------------------------------------------


def _connections_held(expected: int | None = None) -> int:
    """Connections to this database in use: taken from the pool and not given
    back, or (with no pool) open; with ``expected``, once they are that many
    (a closed connection's server process takes a moment to go), or 5 s."""
    deadline = time.monotonic() + 5
    while True:
        pool = getattr(connection, "pool", None)
        if pool is not None:
            stats = pool.get_stats()
            count = stats["pool_size"] - stats["pool_available"]
        else:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database()"
                )
                count = cursor.fetchone()[0]
        if expected is None or count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _mixed_corpus() -> None:
    for n in range(40):
        value = {"n": n} if n % 9 == 0 else f'=answer {n}, said "{n}"'
        store(
            [("q", value), ("email", f"person{n}@example.com")],
            at=WHEN + timedelta(seconds=n // 3),  # ties across the chunks' ends
        )


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [2, 3])
def test_chunks_read_at_once_are_the_lines_in_order_and_close_their_connections(
    workers,
):
    _mixed_corpus()
    before = _connections_held()
    masked = ExportOptions(masked_keys=frozenset({"email"}))

    for options in (ExportOptions(), masked):
        text = assert_same(options, chunk_size=4, workers=workers)
        assert text.count("\r\n") == 41

    assert _connections_held(before) == before  # every worker's given back


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_download_stopped_early_gives_the_workers_connections_back():
    _mixed_corpus()
    before = _connections_held()
    submissions = FormSubmission.objects.all()
    lines = postgres_csv_lines(
        submissions=submissions,
        columns=submission_export_columns(submissions=submissions),
        options=ExportOptions(),
        chunk_size=3,
        workers=2,
    )
    response = csv_streaming_response(
        text_chunks(lines, chunk_chars=10), filename="x.csv"
    )

    taken = [next(iter(response)) for _ in range(5)]
    response.close()  # the client went away: Django closes the response

    assert len(taken) == 5
    # Every connection back, the request's own too (``request_finished``);
    # with no pool, counting them opens this thread's again.
    after = before - 1 if getattr(connection, "pool", None) else before
    assert _connections_held(after) == after


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_s_error_reaches_the_reader_and_its_connection_goes_back(
    monkeypatch,
):
    _mixed_corpus()
    before = _connections_held()
    calls = []

    def failing(*args, **kwargs):
        calls.append(kwargs["after"])
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return chunk_lines(*args, **kwargs)

    monkeypatch.setattr(export_chunks, "chunk_lines", failing)

    with pytest.raises(RuntimeError, match="went away"):
        database_csv(
            FormSubmission.objects.all(),
            [ExportColumn(key="q")],
            ExportOptions(),
            chunk_size=4,
            workers=2,
        )
    assert _connections_held(before) == before


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_exports_at_once_share_the_process_s_workers(monkeypatch):
    """Two downloads in one process read at most ``workers`` chunks at once
    between them (the pool's other connections stay the deliveries')."""
    _mixed_corpus()
    reading, most = 0, 0
    lock = threading.Lock()

    def counted(*args, **kwargs):
        nonlocal reading, most
        with lock:
            reading += 1
            most = max(most, reading)
        try:
            time.sleep(0.02)
            return chunk_lines(*args, **kwargs)
        finally:
            with lock:
                reading -= 1

    monkeypatch.setattr(export_chunks, "chunk_lines", counted)
    texts: list[str] = []

    def download() -> None:
        try:
            texts.append(
                database_csv(
                    FormSubmission.objects.all(),
                    [ExportColumn(key="q")],
                    ExportOptions(),
                    chunk_size=2,
                    workers=2,
                )
            )
        finally:
            connections.close_all()

    downloads = [threading.Thread(target=download) for _ in range(3)]
    for thread in downloads:
        thread.start()
    for thread in downloads:
        thread.join()

    assert len(texts) == 3
    assert texts[0] == texts[1] == texts[2]
    assert most == 2


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_submissions_committed_into_the_last_chunk_lose_no_other(monkeypatch):
    """The last chunk is the next ``size``: if late commits fill it, reading
    goes on (a submission's time is its event's, and commits come late)."""
    for n in range(5):
        store([("q", f"old {n}")], at=WHEN + timedelta(seconds=n))
    found_end = export_chunks.chunk_end

    def end_then_commit(submissions, after, size):
        end = found_end(submissions, after, size)
        if (
            end is None
            and not FormSubmission.objects.filter(conversation_id="late").exists()
        ):
            for n in range(2):  # committed now, sorting inside the last chunk
                store(
                    [("q", f"late {n}")],
                    at=WHEN + timedelta(seconds=3, milliseconds=100),
                    conversation_id="late",
                )
        return end

    monkeypatch.setattr(export_chunks, "chunk_end", end_then_commit)

    text = database_csv(
        FormSubmission.objects.all(),
        [ExportColumn(key="q")],
        ExportOptions(),
        chunk_size=3,
        workers=2,
    )

    answers = [line.rsplit(",", 1)[1] for line in text.split("\r\n")[1:-1]]
    assert answers == ["old 0", "old 1", "old 2", "old 3", "late 0", "late 1", "old 4"]


def test_quoting_is_csv_writer_s_for_every_character():
    quoted = set()
    for code in range(0x10000):
        char = chr(code)
        if 0xD800 <= code < 0xE000:
            continue  # lone surrogates: never stored (fields.storable_text)
        written = "".join(csv_lines([[f"a{char}b", "x"]]))
        if written.startswith('"'):
            quoted.add(char)
        assert written == csv_cell(f"a{char}b") + ",x\r\n"
    assert quoted == set(',"\r\n')


@postgres_only
@pytest.mark.django_db
def test_inside_a_transaction_the_chunks_are_read_on_its_own_connection():
    """Another connection would not see this test's rows: all are exported."""
    _mixed_corpus()
    assert connection.in_atomic_block
    assert_same(chunk_size=4, workers=2)


@pytest.mark.django_db
def test_a_chunk_ends_at_the_size_th_submission_after_the_last():
    stored = [store([], at=WHEN + timedelta(seconds=n // 2)) for n in range(5)]
    keys = [(s.submitted_at, s.pk) for s in stored]
    everything = FormSubmission.objects.all()

    assert chunk_end(everything, None, 2) == keys[1]
    assert chunk_end(everything, keys[1], 2) == keys[3]
    assert chunk_end(everything, keys[3], 2) is None  # one left
    assert chunk_end(everything, keys[3], 1) == keys[4]


# --- any answer at all ----------------------------------------------------------

_tricky_text = st.text(
    alphabet=st.sampled_from(
        list("ab1.,\"'=+-@eE \t\r\n\\")
        + list(PYTHON_SPACES[5:12])
        + ["\uff1d", "\uff0d", "\u0661", "\u00e9", "\U0001f389"]
    ),
    max_size=8,
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _tricky_text,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(_tricky_text, children, max_size=2)
    ),
    max_leaves=5,
)


@postgres_only
@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    forms=st.lists(
        st.tuples(
            st.lists(st.tuples(st.sampled_from("abc"), _json), max_size=4),
            _tricky_text,
        ),
        min_size=1,
        max_size=4,
    ),
    escape=st.booleans(),
    masked=st.sets(st.sampled_from("abc")),
)
def test_any_answers_are_written_as_python_writes_them(forms, escape, masked):
    FormAnswer.objects.all().delete()
    FormSubmission.objects.all().delete()
    for n, (answers, name) in enumerate(forms):
        store(answers, at=WHEN + timedelta(seconds=n), conversation_id=name)
    options = ExportOptions(escape_formulas=escape, masked_keys=frozenset(masked))
    assert_same(options, chunk_size=2)
