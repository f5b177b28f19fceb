"""On/off switches read from ``RENDER_*`` environment variables, parsed one way everywhere."""

from __future__ import annotations

import os

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def env_flag(name: str, default: bool) -> bool:
    """``1/true/yes/on`` -> True, ``0/false/no/off`` -> False (any case, spaces ignored); unset, empty or
    anything else -> ``default``."""
    value = os.environ.get(name, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    return default
