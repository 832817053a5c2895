"""Fixtures of the observability tests: a real OTLP receiver over HTTP."""

from helpers.otlp import http_receiver

__all__ = ["http_receiver"]
