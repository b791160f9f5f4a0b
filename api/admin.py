"""API tokens in the admin, never listing their keys.

DRF's own token admin shows every key in its changelist. Here the list shows
the user and the creation time only; the key appears on the token's own page,
where copying it for an API client is the point.

A token reads whatever its user may read, so holding another user's key is
acting as them: a superuser manages everyone's tokens, anyone else (with
the token permissions) only their own.
"""

from typing import Any

from django.contrib import admin
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from api.models import ApiToken

admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    list_display = ("user", "created")
    list_select_related = ("user",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Adding: only the user, the key is generated. Afterwards: read only.
        return ("user",) if obj is None else ("user", "key", "created")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Any = None
    ) -> tuple[str, ...]:
        return () if obj is None else ("user", "key", "created")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        if request.user.is_superuser:
            return tokens
        return tokens.filter(user=request.user)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if (
            db_field.name == "user"
            and field is not None
            and not request.user.is_superuser
        ):
            field.queryset = field.queryset.filter(pk=request.user.pk)
        return field
