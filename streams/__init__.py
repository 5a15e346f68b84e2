"""Faust worker, HTTP gateway, pure scoring/spam cores and the engage CLI."""
