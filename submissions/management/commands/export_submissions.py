import difflib
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from submissions.exports import (
    ExportOptions,
    export_rows,
    text_chunks,
    xlsx_write,
)
from submissions.management.options import bot_from_slug, parse_moment
from submissions.selectors.console import (
    submission_handler_exists,
    submission_handler_names,
)
from submissions.selectors.exports import (
    submission_csv_lines,
    submission_export_columns,
    submission_export_iter,
    submission_export_queryset,
)


class Command(BaseCommand):
    help = (
        "Export form submissions as CSV or XLSX: one row per submission, one "
        "column per question. CSV to stdout or to --output, XLSX to --output; "
        "a progress bar with --output on a terminal."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--bot", metavar="SLUG", help="Only this bot's submissions."
        )
        parser.add_argument(
            "--handler",
            metavar="NAME",
            help="Only this handler's (form's) submissions.",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="Received on or after this date (or ISO date-time).",
        )
        parser.add_argument(
            "--until",
            metavar="DATE",
            help="Received on or before this date (a date-time: strictly before it).",
        )
        parser.add_argument(
            "--format",
            choices=["csv", "xlsx"],
            default="csv",
            help="csv (the default) or xlsx (typed cells; needs --output).",
        )
        parser.add_argument(
            "--labels",
            action="store_true",
            help="Head question columns with their labels instead of their keys.",
        )
        parser.add_argument(
            "--excel",
            action="store_true",
            help="CSV only: start with a UTF-8 byte order mark so spreadsheet programs read accents right.",
        )
        parser.add_argument(
            "--output", "-o", metavar="PATH", help="Write to this file, not stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        xlsx = options["format"] == "xlsx"
        if xlsx and options["output"] is None:
            raise CommandError(
                "XLSX is a binary file, not text for a terminal: give "
                "--output FILE, e.g. --output submissions.xlsx."
            )
        if xlsx and options["excel"]:
            raise CommandError(
                "--excel is for CSV (a byte order mark); an XLSX file needs none."
            )
        bot = bot_from_slug(options["bot"])
        handler = options["handler"]
        if handler is not None and not submission_handler_exists(handler_name=handler):
            raise CommandError(self._unknown_handler_message(handler))
        since = (
            parse_moment(options["since"], option="--since")
            if options["since"]
            else None
        )
        until = (
            parse_moment(options["until"], option="--until", end=True)
            if options["until"]
            else None
        )
        if since and until and since >= until:
            raise CommandError(
                f"--since ({options['since']}) must be before --until ({options['until']})."
            )
        submissions = submission_export_queryset(
            bot=bot, handler_name=handler, since=since, until=until
        )
        export = ExportOptions(labels=options["labels"], excel=options["excel"])
        columns = submission_export_columns(submissions=submissions)

        path = options["output"]
        if path is None:
            self._write(
                lambda text: self.stdout.write(text, ending=""),
                submission_csv_lines(
                    submissions=submissions, columns=columns, options=export
                ),
                excel=export.excel,
            )
            return
        # The raw stream: tqdm draws with carriage returns that Django's
        # OutputWrapper would end with a newline each.
        stderr = self.stderr._out
        show_progress = stderr.isatty()
        total = submissions.count() if show_progress else None

        def progress(rows: Iterable[Any]) -> tqdm:
            return tqdm(
                rows,
                total=total,
                unit=" rows",
                file=stderr,
                disable=not show_progress,
                desc="Exporting",
            )

        if xlsx:
            rows = submission_export_iter(submissions=submissions)
            with (
                progress(rows) as shown,
                Path(path).open("wb") as out,  # a bad path fails now, not at the end
            ):
                count = xlsx_write(
                    export_rows(columns=columns, submissions=shown, options=export),
                    out,
                )
        else:
            lines = iter(
                submission_csv_lines(
                    submissions=submissions, columns=columns, options=export
                )
            )
            header = next(lines)  # the bar counts submissions
            with (
                progress(lines) as shown,
                Path(path).open("w", encoding="utf-8", newline="") as out,
            ):
                count = self._write(
                    out.write, itertools.chain([header], shown), excel=export.excel
                )
        plural = "" if count == 1 else "s"
        self.stdout.write(
            f"Exported {count} submission{plural} with {len(columns)} question "
            f"column{'' if len(columns) == 1 else 's'} to {path}."
        )

    @staticmethod
    def _write(
        write: Callable[[str], Any], lines: Iterable[str], *, excel: bool
    ) -> int:
        """Write the CSV; return the number of submissions (lines after the header)."""
        count = 0

        def counted() -> Iterator[str]:
            nonlocal count
            for line in lines:
                count += 1
                yield line

        for chunk in text_chunks(counted(), excel=excel):
            write(chunk)
        return max(count - 1, 0)

    @staticmethod
    def _unknown_handler_message(name: str) -> str:
        known = submission_handler_names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"No handler named {name!r} is registered or has submissions.{hint} "
            f"Registered handlers: {', '.join(known) or 'none'}."
        )
