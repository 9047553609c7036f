"""Geodesic distances for the services. geopy is imported at the first distance, not at start-up."""

from __future__ import annotations

import math
from typing import Any


def geodesic(*points: Any) -> Any:
    """geopy's ``geodesic(a, b)`` (use ``.meters``), loading geopy the first time."""
    from geopy.distance import geodesic as _geodesic

    return _geodesic(*points)


EARTH_RADIUS_M = 6_371_008.8  # the mean radius


def approx_meters(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in metres: within 0.5 % of the geodesic, about 50 times faster.

    For what is only shown or ordered (the visit list's "1.2 km"); a check-in's distance from the
    address, which decides whether it is flagged, uses :func:`geodesic`.
    """
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
