"""Addresses to coordinates through geopy, with every answer cached in the database.

The geocoder is chosen by ``FIELDBOT_GEOCODER``: ``off`` (the default: no network at all), or a geopy
service name with optional settings, e.g. ``nominatim`` or ``baidu:api_key=XXXX``. Any object with
geopy's ``geocode(query)`` method works, so the tests pass an offline one. A failed or empty
answer never stops an import: the case simply has no coordinates and is listed unsorted by distance.

The cache, like every coordinate fieldbot stores, holds WGS-84. Chinese geocoders answer in their
map's datum: Baidu's (geopy's ``baidu`` and ``baiduv3``) in BD-09, Amap's and Tencent's (not in geopy;
a geocoder object of one's own named ``Amap``, ``Gaode`` or ``Tencent``) in GCJ-02. The answer is
converted to WGS-84 (:mod:`bot.services.coords`) before it is cached, chosen by the geocoder's class
name (:func:`provider_name`, :data:`TO_WGS84`); any other geocoder is taken to answer in WGS-84.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.coords import Point, bd09_to_wgs84, gcj02_to_wgs84
from bot.storage.db import Database
from bot.storage.models import GeocodeResult

log = logging.getLogger(__name__)


class GeocoderLike(Protocol):
    def geocode(self, query: str, *args: Any, **kwargs: Any) -> Any: ...


def make_geocoder(spec: str) -> GeocoderLike | None:
    """``off`` → None; ``name[:key=value,...]`` → that geopy geocoder."""
    spec = spec.strip()
    if not spec or spec.lower() == "off":
        return None
    from geopy.geocoders import get_geocoder_for_service

    name, _, options = spec.partition(":")
    kwargs: dict[str, Any] = {"user_agent": "fieldbot"} if name.lower() == "nominatim" else {}
    for part in filter(None, options.split(",")):
        key, _, value = part.partition("=")
        kwargs[key.strip()] = value.strip()
    geocoder: GeocoderLike = get_geocoder_for_service(name.lower())(**kwargs)
    return geocoder


def normalize_address(address: str) -> str:
    return re.sub(r"\s+", " ", address.replace("\u3000", " ")).strip()


def provider_name(geocoder: GeocoderLike) -> str:
    return type(geocoder).__name__[:40]


# The datum a geocoder answers in, by its class name, when it is not WGS-84: a function back to WGS-84.
TO_WGS84: dict[str, Callable[[float, float], Point]] = {
    "Baidu": bd09_to_wgs84,  # geopy's v2 API: bd09ll unless asked otherwise
    "BaiduV3": bd09_to_wgs84,
    "Amap": gcj02_to_wgs84,
    "AMap": gcj02_to_wgs84,
    "Gaode": gcj02_to_wgs84,
    "Tencent": gcj02_to_wgs84,
}


def to_wgs84(provider: str, lat: float, lon: float) -> Point:
    """The provider's answer (lat, lon) as WGS-84."""
    convert = TO_WGS84.get(provider)
    return convert(lat, lon) if convert is not None else (lat, lon)


async def locate_many(
    database: Database, geocoder: GeocoderLike | None, addresses: Iterable[str], *, now: datetime
) -> dict[str, tuple[float, float] | None]:
    """Coordinates for each address: from the cache, else asked once of the geocoder and cached."""
    wanted = {normalize_address(a) for a in addresses if a.strip()}
    found: dict[str, tuple[float, float] | None] = {}
    if not wanted:
        return found
    async with database.read() as session:
        for row in await session.scalars(select(GeocodeResult).where(GeocodeResult.query.in_(wanted))):
            found[row.query] = (row.lat, row.lon) if row.lat is not None and row.lon is not None else None
    if geocoder is None:
        return found
    provider = provider_name(geocoder)
    fresh: dict[str, tuple[float, float] | None] = {}
    for query in sorted(wanted - found.keys()):
        try:
            location = await asyncio.to_thread(geocoder.geocode, query)
        except Exception as exc:  # geopy raises many kinds; none may stop an import
            log.warning("geocoding %r failed: %s", query, exc)
            continue  # not cached: try again next time
        fresh[query] = (to_wgs84(provider, float(location.latitude), float(location.longitude))
                        if location is not None else None)
    if fresh:
        async with database.write() as session:
            await _cache(session, fresh, provider, now)
    return {**found, **fresh}


async def _cache(session: AsyncSession, results: dict[str, tuple[float, float] | None], provider: str,
                 now: datetime) -> None:
    existing = set(await session.scalars(select(GeocodeResult.query).where(GeocodeResult.query.in_(results))))
    for query, coords in results.items():
        if query in existing:
            continue
        session.add(GeocodeResult(query=query, lat=coords[0] if coords else None, lon=coords[1] if coords else None,
                                  provider=provider, at=now))
