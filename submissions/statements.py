"""Several writes as one SQL statement on PostgreSQL, built by Django's own compilers.

A delivery's writes were nine round trips (``BEGIN``, three inserts,
``COMMIT``; ``BEGIN``, the run, the status, ``COMMIT``), a third of its
CPU in Django's ORM and in PostgreSQL's per-statement work. On PostgreSQL
they are two statements, each atomic by itself: data-modifying ``WITH``
clauses chain the inserts, a later row naming an earlier one's id as
``(SELECT id FROM <clause>)``.

Each ``INSERT`` and ``UPDATE`` is compiled by Django from model instances
(``InsertQuery``, ``UpdateQuery``), once per shape of statement, and every
value is prepared exactly as ``Model.save()`` and ``bulk_create`` prepare
it: the storable-text sanitiser, JSON encoding, defaults. Only the joining
is written here.
``services.storage.StatementStorage`` uses it on PostgreSQL; other databases
keep the ORM's statements.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import Field, Model, Q
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery, UpdateQuery


class IdOf(RawSQL):
    """A foreign key's value: the id an earlier clause of the statement returned."""

    def __init__(self, clause: str) -> None:
        super().__init__(f"(SELECT id FROM {clause})", ())  # noqa: S608 - our own clause names
        self.clause = clause


def id_of(clause: str) -> IdOf:
    return IdOf(clause)


#: (model, returning, shape of each row) -> INSERT text, as Django compiled it.
_insert_templates: dict[tuple[Any, ...], str] = {}
#: (model, field names) -> UPDATE ... WHERE pk text, as Django compiled it.
_update_templates: dict[tuple[Any, ...], str] = {}


@functools.cache
def _insert_fields(model: type[Model]) -> tuple[Field, ...]:
    """The fields an INSERT writes: every concrete one but a database-made key."""
    return tuple(
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and getattr(f, "db_returning", False))
    )


def insert_sql(
    objs: Sequence[Model],
    *,
    returning: bool,
    only_if: str | None = None,
    using: str = "default",
) -> tuple[str, tuple[Any, ...]]:
    """One ``INSERT`` of ``objs`` (one model), as ``bulk_create`` would send it.

    Every concrete field but an auto primary key is written; a field may
    hold ``id_of(clause)``. With ``returning``, the statement returns the
    new primary key. With ``only_if`` (one row only), the row is inserted
    only when that earlier clause returned a row (``INSERT ... SELECT ...
    FROM clause``).

    Each value is prepared as Django's insert compiler prepares it
    (``pre_save`` then ``get_db_prep_save``); the statement's text, which
    depends only on the model, the row count and which values are ``id_of``,
    is compiled by Django once per shape and reused (compiling it was a
    fifth of a delivery's Python time).
    """
    model = type(objs[0])
    connection = connections[using]
    fields = _insert_fields(model)
    params: list[Any] = []
    shape = []
    for obj in objs:
        row = []
        for field in fields:
            value = field.pre_save(obj, True)
            if isinstance(value, IdOf):
                row.append(value.clause)
            else:
                row.append(None)
                params.append(field.get_db_prep_save(value, connection=connection))
        shape.append(tuple(row))
    key = (model, returning, only_if, using, tuple(shape))
    sql = _insert_templates.get(key)
    if sql is None:
        sql, compiled = _insert_compile(objs, fields, returning=returning, using=using)
        if only_if is not None:
            sql = _insert_from(sql, only_if)
        if any(getattr(f, "get_placeholder", None) for f in fields):
            return sql, compiled  # a field that rewrites its value: never cached
        _insert_templates[key] = sql
    return sql, tuple(params)


#: Above this many rows, ``insert_rows_sql`` (arrays) instead of ``insert_sql``
#: (one ``VALUES`` row each): a form of thousands of answers costs time linear
#: in its size, not the planner's time for thousands of rows and subqueries.
UNNEST_ABOVE = 100

#: (model, using, constant clauses) -> INSERT ... SELECT FROM UNNEST text.
_unnest_templates: dict[tuple[Any, ...], str] = {}


def insert_rows_sql(
    objs: Sequence[Model], *, using: str = "default"
) -> tuple[str, tuple[Any, ...]]:
    """One ``INSERT ... SELECT ... FROM UNNEST(arrays)`` of many rows of one model.

    One array parameter per column, whatever the number of rows, so the
    statement's text, its parsing and its planning do not grow with them
    (``insert_sql`` sends a ``VALUES`` row per object, and each ``id_of``
    is a subquery of its own: 100,000 answers took minutes to plan). A
    field holding ``id_of(clause)`` must hold the same clause in every row;
    it is selected once. Values are prepared as ``insert_sql`` prepares
    them, and cast to the column's type as Django's own ``bulk_create``
    does with ``UNNEST``. A field that rewrites its placeholder falls back
    to ``insert_sql``.
    """
    model = type(objs[0])
    connection = connections[using]
    fields = _insert_fields(model)
    if any(getattr(f, "get_placeholder", None) for f in fields):
        return insert_sql(objs, returning=False, using=using)
    constants: dict[str, str] = {}
    columns: list[list[Any]] = []
    for field in fields:
        first = field.pre_save(objs[0], True)
        if isinstance(first, IdOf):
            for obj in objs:
                value = field.pre_save(obj, True)
                if not (isinstance(value, IdOf) and value.clause == first.clause):
                    raise ValueError(
                        f"{model.__name__}.{field.name} must be id_of({first.clause!r}) "
                        "in every row of one UNNEST insert."
                    )
            constants[field.column] = first.clause
            continue
        columns.append(
            [
                field.get_db_prep_save(field.pre_save(obj, True), connection=connection)
                for obj in objs
            ]
        )
    key = (model, using, tuple(sorted(constants.items())))
    sql = _unnest_templates.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        names, selected, arrays = [], [], []
        for field in fields:
            names.append(quote(field.column))
            if field.column in constants:
                selected.append(f"(SELECT id FROM {constants[field.column]})")  # noqa: S608 - our own clause names
            else:
                alias = f"c{len(arrays)}"
                selected.append(f"u.{alias}")
                db_type = field.db_type(connection).split("(")[0]
                arrays.append((alias, f"(%s)::{db_type}[]"))
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(names)}) "  # noqa: S608 - names from the model
            f"SELECT {', '.join(selected)} "
            f"FROM UNNEST({', '.join(a for _, a in arrays)}) "
            f"AS u({', '.join(alias for alias, _ in arrays)})"
        )
        _unnest_templates[key] = sql
    return sql, tuple(columns)


_VALUES_RE = re.compile(r"^(INSERT INTO .+?) VALUES \((.*)\)( RETURNING .+)?$", re.S)


def _insert_from(sql: str, clause: str) -> str:
    """``INSERT ... VALUES (row)`` as ``INSERT ... SELECT row FROM clause``."""
    match = _VALUES_RE.match(sql)
    if match is None or "), (" in match[2]:
        raise ValueError(f"Not a one-row INSERT: {sql[:200]}")
    return f"{match[1]} SELECT {match[2]} FROM {clause}{match[3] or ''}"  # noqa: S608 - Django's compiled INSERT, our clause name


def _insert_compile(
    objs: Sequence[Model],
    fields: Sequence[Field],
    *,
    returning: bool,
    using: str,
) -> tuple[str, tuple[Any, ...]]:
    model = type(objs[0])
    query = InsertQuery(model)
    query.insert_values(fields, objs, raw=False)
    compiler = query.get_compiler(using=using)
    if returning:
        compiler.returning_fields = [model._meta.pk]
    ((sql, params),) = compiler.as_sql()
    return sql, tuple(params)


def update_sql(
    model: type[Model],
    pk: Any,
    values: dict[str, Any],
    *,
    where: dict[str, bool] | None = None,
    match: dict[str, Any] | None = None,
    returning: bool = False,
    using: str = "default",
) -> tuple[str, tuple[Any, ...]]:
    """One ``UPDATE`` of row ``pk``, as ``QuerySet.update(**values)`` would send it.

    Values are prepared as Django's update compiler prepares plain values
    (``get_db_prep_save``; no expressions); the text is compiled once per
    model and set of fields, then reused. ``where`` adds conditions that take
    no parameter (``{"erased_at__isnull": True}``), ``match`` columns that
    must equal a value (``{"received_at": ...}``: a partitioned table's key,
    so that only its partition is read); with ``returning``, the statement
    returns the row's id when it matched.
    """
    connection = connections[using]
    meta = model._meta
    conditions = tuple(sorted((where or {}).items()))
    match = match or {}
    key = (model, using, tuple(values), conditions, tuple(match), returning)
    sql = _update_templates.get(key)
    if sql is None:
        query = UpdateQuery(model)
        query.add_update_values(values)
        query.add_q(Q(pk=pk, **dict(conditions)))
        for name, value in match.items():
            query.add_q(Q(**{name: value}))
        sql, compiled = query.get_compiler(using=using).as_sql()
        if len(compiled) != len(values) + 1 + len(match):
            raise ValueError(f"A where condition took a parameter: {conditions}")
        if returning:
            sql += f" RETURNING {connection.ops.quote_name(meta.pk.column)}"
        if any(getattr(meta.get_field(n), "get_placeholder", None) for n in values):
            return sql, tuple(compiled)
        _update_templates[key] = sql
    params = [
        meta.get_field(name).get_db_prep_save(value, connection=connection)
        for name, value in values.items()
    ]
    params.append(meta.pk.get_db_prep_value(pk, connection, prepared=False))
    params.extend(
        meta.get_field(name).get_db_prep_value(value, connection, prepared=False)
        for name, value in match.items()
    )
    return sql, tuple(params)


def run(
    clauses: Sequence[tuple[str, tuple[str, tuple[Any, ...]]]],
    final: str,
    *,
    using: str = "default",
) -> tuple[Any, ...]:
    """``WITH name AS (sql), ... <final>``: one statement; returns its one row.

    ``final`` is a parameterless ``SELECT`` of what the clauses returned."""
    parts, params = [], []
    for name, (sql, clause_params) in clauses:
        parts.append(f"{name} AS ({sql})")
        params.extend(clause_params)
    sql = f"WITH {', '.join(parts)} {final}"
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
