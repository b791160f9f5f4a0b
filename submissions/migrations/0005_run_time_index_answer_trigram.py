from django.db import migrations, models

# The admin's search for text inside answers is `UPPER(value_text) LIKE
# UPPER('%term%')` (Django's icontains); on PostgreSQL a trigram GIN index on
# that expression serves it. pg_trgm is a trusted extension (PostgreSQL 13+):
# the database owner may create it. Other databases keep the plain scan.
TRIGRAM_INDEX = "answer_text_trgm_idx"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON submissions_formanswer "
        "USING gin (UPPER(value_text) gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("submissions", "0004_replay_permission_delivery_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="handlerrun",
            index=models.Index(fields=["-started_at", "-id"], name="run_time_idx"),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index),
    ]
