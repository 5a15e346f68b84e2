"""Faust worker, HTTP gateway, pure scoring/spam cores and the engage CLI."""

from streams import native

native.guard()  # before any hot-path module is imported: a stale compiled build must not run
