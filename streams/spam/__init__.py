"""Spam-profile detection: a pure per-community core, its config, flags, and offline evaluation."""

from streams.spam.config import SpamConfig
from streams.spam.detector import SpamDetector
from streams.spam.flags import REASONS, FlagRecord

__all__ = ["REASONS", "FlagRecord", "SpamConfig", "SpamDetector"]
