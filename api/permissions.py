from typing import Any

from rest_framework.permissions import BasePermission, DjangoModelPermissions
from rest_framework.request import Request

from submissions.permissions import EXPORT_FORMSUBMISSION


class ViewModelPermissions(DjangoModelPermissions):
    """Model permissions where reading needs the ``view_<model>`` permission.

    DRF's ``DjangoModelPermissions`` lets any authenticated user read; here a
    token or a staff login sees only what the admin would show that user.
    Anonymous requests are refused (401 with ``WWW-Authenticate``).
    """

    message = "You do not have permission to view these records."
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        # The API is read only: a write gets 405 whoever asks, not a 403
        # that would suggest some permission could allow it.
        "POST": [],
        "PUT": [],
        "PATCH": [],
        "DELETE": [],
    }


#: The formats that are exports (files of every match), not pages of JSON.
EXPORT_FORMATS = frozenset({"csv", "xlsx"})


class CanExportCSV(BasePermission):
    """The CSV and XLSX formats need the export permission too, as the admin's export does.

    Runs after content negotiation, so ``?format=csv`` and ``Accept: text/csv``
    (and the same for XLSX) are all caught.
    """

    message = (
        "Exporting to CSV or XLSX needs the “Can export form submissions to CSV” "
        f"permission ({EXPORT_FORMSUBMISSION})."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        renderer = getattr(request, "accepted_renderer", None)
        if renderer is not None and renderer.format in EXPORT_FORMATS:
            return bool(request.user and request.user.has_perm(EXPORT_FORMSUBMISSION))
        return True
