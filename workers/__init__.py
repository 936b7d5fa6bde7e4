"""The Celery fleet: ``celery -A workers worker`` / ``celery -A workers beat``."""

from workers import signals
from workers.app import app

__all__ = ["app", "signals"]
