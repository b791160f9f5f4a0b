from rest_framework.authtoken.models import TokenProxy


class ApiToken(TokenProxy):
    """DRF's token, named without its key.

    ``Token.__str__`` is the key itself, and the admin writes ``str(obj)``
    into its messages, its delete confirmation and the "Recent actions" list
    on every admin index page. This proxy keeps the key out of all of them.
    """

    class Meta:
        proxy = True
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"API token of {self.user}"
