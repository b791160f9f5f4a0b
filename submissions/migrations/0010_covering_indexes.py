import django.db.models.deletion
from django.db import migrations, models

# Indexes the console's aggregates read alone (index-only scans on
# PostgreSQL), without adding an index to the intake's writes:
#
# - event_time_idx covers status and submission_time_idx covers the form
#   (bot, handler name): the overview's per-day counts.
# - submission_form_idx (bot, handler name, newest first) is one form's table
#   and the set its column query starts from; it replaces the bot foreign
#   key's own index, which submission_bot_idx and it both lead with.
# - answer_submission_key_idx (submission, key) replaces the submission
#   foreign key's own index: the column query reads the keys from it.
#
# SQLite ignores INCLUDE (Django drops it there), so its indexes are as
# before. The foreign keys lose only their index: dropping it by name keeps
# Django from dropping and re-validating the constraint (a scan of every
# answer under a lock). Each CREATE INDEX blocks writes to its table while it
# builds: seconds at a million events.

ANSWER_FK_INDEX = "submissions_formanswer_submission_id_0b8fcc90"
BOT_FK_INDEX = "submissions_formsubmission_bot_id_270b5387"


class Migration(migrations.Migration):

    dependencies = [
        ("submissions", "0009_token_info"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="formanswer",
            index=models.Index(
                fields=["submission", "key"], name="answer_submission_key_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="formsubmission",
            index=models.Index(
                fields=["bot", "handler_name", "-submitted_at", "-id"],
                name="submission_form_idx",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="formanswer",
                    name="submission",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="answers",
                        to="submissions.formsubmission",
                    ),
                ),
                migrations.AlterField(
                    model_name="formsubmission",
                    name="bot",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="submissions",
                        to="submissions.bot",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{ANSWER_FK_INDEX}"',
                    f'CREATE INDEX "{ANSWER_FK_INDEX}" '
                    'ON "submissions_formanswer" ("submission_id")',
                ),
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{BOT_FK_INDEX}"',
                    f'CREATE INDEX "{BOT_FK_INDEX}" '
                    'ON "submissions_formsubmission" ("bot_id")',
                ),
            ],
        ),
        migrations.RemoveIndex(
            model_name="formsubmission",
            name="submission_time_idx",
        ),
        migrations.AddIndex(
            model_name="formsubmission",
            index=models.Index(
                fields=["-submitted_at", "-id"],
                include=("bot", "handler_name"),
                name="submission_time_idx",
            ),
        ),
        migrations.RemoveIndex(
            model_name="webhookevent",
            name="event_time_idx",
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(
                fields=["-received_at", "-id"],
                include=("status",),
                name="event_time_idx",
            ),
        ),
    ]
