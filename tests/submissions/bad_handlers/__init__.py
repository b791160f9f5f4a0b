"""An app of badly behaved handlers, for servers started by tests (``settings``)."""
