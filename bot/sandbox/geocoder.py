"""A geopy-compatible geocoder that answers from a table: no network, for tests and the demo."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geopy.location import Location


class OfflineGeocoder:
    """Answers addresses containing a known place name; counts the questions it was asked."""

    def __init__(self, places: Mapping[str, tuple[float, float]]) -> None:
        self.places = dict(places)
        self.queries: list[str] = []

    def geocode(self, query: str, *args: Any, **kwargs: Any) -> Location | None:
        self.queries.append(query)
        for name, (lat, lon) in self.places.items():
            if name in query:
                return Location(query, (lat, lon), {"source": "offline", "matched": name})
        return None
