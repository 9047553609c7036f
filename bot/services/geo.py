"""Geodesic distances for the services. geopy is imported at the first distance, not at start-up."""

from __future__ import annotations

from typing import Any


def geodesic(*points: Any) -> Any:
    """geopy's ``geodesic(a, b)`` (use ``.meters``), loading geopy the first time."""
    from geopy.distance import geodesic as _geodesic

    return _geodesic(*points)
