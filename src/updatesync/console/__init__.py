"""The web console of a hierarchy: the sites, their sync, status messages, alerts, timeline."""

from updatesync.console.app import create_console_app

__all__ = ["create_console_app"]
