"""Several writes as one SQL statement on PostgreSQL, built by Django's own compilers.

A delivery's writes were nine round trips (``BEGIN``, three inserts,
``COMMIT``; ``BEGIN``, the run, the status, ``COMMIT``), a third of its
CPU in Django's ORM and in PostgreSQL's per-statement work. On PostgreSQL
they are two statements, each atomic by itself: data-modifying ``WITH``
clauses chain the inserts, a later row naming an earlier one's id as
``(SELECT id FROM <clause>)``.

Each ``INSERT`` and ``UPDATE`` is compiled by Django from model instances
(``InsertQuery``, ``UpdateQuery``), so every field is prepared exactly as
``Model.save()`` and ``bulk_create`` prepare it: the storable-text
sanitiser, JSON encoding, defaults. Only the joining is written here.
Other databases keep the ORM's statements (``is_supported``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import Model
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery, UpdateQuery


def is_supported(using: str = "default") -> bool:
    """Whether this database takes data-modifying ``WITH`` clauses (PostgreSQL)."""
    return connections[using].vendor == "postgresql"


def id_of(clause: str) -> RawSQL:
    """A value for a foreign key: the id an earlier clause of the statement returned."""
    return RawSQL(f"(SELECT id FROM {clause})", ())  # noqa: S608, S611 - our own clause names


def insert_sql(
    objs: Sequence[Model], *, returning: bool, using: str = "default"
) -> tuple[str, tuple[Any, ...]]:
    """One ``INSERT`` of ``objs`` (one model), as ``bulk_create`` would send it.

    Every concrete field but an auto primary key is written; a field may
    hold ``id_of(clause)``. With ``returning``, the statement returns the
    new primary key.
    """
    model = type(objs[0])
    meta = model._meta
    fields = [
        f
        for f in meta.concrete_fields
        if not (f.primary_key and getattr(f, "db_returning", False))
    ]
    query = InsertQuery(model)
    query.insert_values(fields, objs, raw=False)
    compiler = query.get_compiler(using=using)
    if returning:
        compiler.returning_fields = [meta.pk]
    ((sql, params),) = compiler.as_sql()
    return sql, tuple(params)


def update_sql(
    model: type[Model], pk: Any, values: dict[str, Any], *, using: str = "default"
) -> tuple[str, tuple[Any, ...]]:
    """One ``UPDATE`` of row ``pk``, as ``QuerySet.update(**values)`` would send it."""
    query = UpdateQuery(model)
    query.add_update_values(values)
    query.add_q(model._base_manager.filter(pk=pk).query.where)  # type: ignore[arg-type]
    sql, params = query.get_compiler(using=using).as_sql()
    return sql, tuple(params)


def run(
    clauses: Sequence[tuple[str, tuple[str, tuple[Any, ...]]]],
    final: tuple[str, tuple[Any, ...]],
    *,
    using: str = "default",
) -> tuple[Any, ...]:
    """``WITH name AS (sql), ... <final>``: one statement; returns its one row."""
    parts, params = [], []
    for name, (sql, clause_params) in clauses:
        parts.append(f"{name} AS ({sql})")
        params.extend(clause_params)
    sql = f"WITH {', '.join(parts)} {final[0]}"
    with connections[using].cursor() as cursor:
        cursor.execute(sql, (*params, *final[1]))
        return cursor.fetchone()
