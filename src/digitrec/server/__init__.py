"""The web service and its drawing page: `create_app()` builds it, `digitrec serve` runs it.
The library never imports this package."""

from .app import create_app

__all__ = ["create_app"]
