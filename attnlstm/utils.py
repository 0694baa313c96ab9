"""Utilities: reproducibility and session state."""
from .backend import clear_session, set_random_seed

__all__ = ["set_random_seed", "clear_session"]
