"""The worker: `engagement.events` in, state and rows out (app.py is where to start reading)."""

from streams.worker.app import create_app, run_worker

__all__ = ["create_app", "run_worker"]
