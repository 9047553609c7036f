"""China's map datums: WGS-84 is stored, Amap gets GCJ-02, Baidu gets BD-09, Baidu's geocoder is converted back.

Reference points are the published test vectors of the eviltransform (WGS-84 → GCJ-02) and
coordtransform (WGS-84 → GCJ-02, GCJ-02 ↔ BD-09) projects; those projects' inverses are one-step
approximations, so the inverses here are held to a round trip instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from bot.sandbox.geocoder import OfflineGeocoder
from bot.sandbox.harness import BotHarness
from bot.services import coords
from bot.services.geo import approx_meters
from bot.services.geocoding import locate_many
from bot.storage.db import Database
from bot.storage.models import GeocodeResult
from tests.field_office import ANN, BOSS, add_case, alerts

TIANANMEN_WGS = (39.908692, 116.397477)

# (WGS-84, GCJ-02), (lat, lon)
WGS_GCJ = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai (eviltransform)
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen (eviltransform)
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing (eviltransform)
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),  # Beijing (coordtransform)
]

CITIES = [
    TIANANMEN_WGS, (31.2304, 121.4737), (22.5431, 114.0579), (45.7500, 126.6500), (30.5728, 104.0668),
    (43.8256, 87.6168), (18.2528, 109.5120), (29.6520, 91.1721), (53.4800, 122.3500), (25.0375, 102.7224),
]
OUTSIDE = [(35.6762, 139.6503), (51.5074, -0.1278), (40.7128, -74.0060), (-33.8688, 151.2093)]  # Tokyo, London, ...


def test_in_china_is_the_usual_rough_box() -> None:
    assert all(coords.in_china(*p) for p in CITIES)
    assert not any(coords.in_china(*p) for p in OUTSIDE)


@pytest.mark.parametrize(("wgs", "gcj"), WGS_GCJ)
def test_wgs84_to_gcj02_matches_the_published_points(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert coords.wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), WGS_GCJ)
def test_gcj02_to_wgs84_undoes_it_exactly(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert approx_meters(coords.gcj02_to_wgs84(*gcj), wgs) < 0.01


def test_tiananmen_is_moved_about_half_a_kilometre_north_east() -> None:
    gcj = coords.wgs84_to_gcj02(*TIANANMEN_WGS)
    assert gcj == pytest.approx((39.910093, 116.403722), abs=1e-5)  # the widely quoted value, to about a metre
    assert 500 < approx_meters(TIANANMEN_WGS, gcj) < 600
    assert gcj[0] > TIANANMEN_WGS[0] and gcj[1] > TIANANMEN_WGS[1]


def test_gcj02_and_bd09_match_the_published_points() -> None:
    assert coords.gcj02_to_bd09(39.915, 116.404) == pytest.approx((39.92133699351021, 116.41036949371029), abs=1e-9)
    # coordtransform's closed-form inverse; refined here, it stays within 5 cm of it
    assert coords.bd09_to_gcj02(39.915, 116.404) == pytest.approx((39.90865673957631, 116.39762729119315), abs=1e-6)


@pytest.mark.parametrize("wgs", CITIES)
def test_every_round_trip_is_within_half_a_metre(wgs: tuple[float, float]) -> None:
    gcj = coords.wgs84_to_gcj02(*wgs)
    assert 100 < approx_meters(wgs, gcj) < 1000  # GCJ-02's offset is hundreds of metres everywhere in China
    assert approx_meters(coords.gcj02_to_wgs84(*gcj), wgs) < 0.5
    assert approx_meters(coords.bd09_to_gcj02(*coords.gcj02_to_bd09(*gcj)), gcj) < 0.5
    assert approx_meters(coords.bd09_to_wgs84(*coords.wgs84_to_bd09(*wgs)), wgs) < 0.5


@pytest.mark.parametrize("gcj", CITIES)
def test_bd09_is_gcj02_shifted_by_its_constants(gcj: tuple[float, float]) -> None:
    bd = coords.gcj02_to_bd09(*gcj)
    assert bd[0] - gcj[0] == pytest.approx(0.006, abs=0.0015)
    assert bd[1] - gcj[1] == pytest.approx(0.0065, abs=0.0015)


@pytest.mark.parametrize("point", OUTSIDE)
def test_outside_china_gcj02_is_wgs84(point: tuple[float, float]) -> None:
    assert coords.wgs84_to_gcj02(*point) == point
    assert coords.gcj02_to_wgs84(*point) == point


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_links_carry_each_map_s_own_datum_and_encoded_names() -> None:
    glat, glon = coords.wgs84_to_gcj02(*TIANANMEN_WGS)
    blat, blon = coords.wgs84_to_bd09(*TIANANMEN_WGS)
    amap = coords.amap_marker(*TIANANMEN_WGS, "天安门 & 广场")
    assert amap.startswith("https://uri.amap.com/marker?")
    assert _query(amap) == {"position": f"{glon:.6f},{glat:.6f}", "name": "天安门 & 广场", "coordinate": "gaode"}
    assert _query(coords.amap_marker(*TIANANMEN_WGS)) == {"position": f"{glon:.6f},{glat:.6f}",
                                                           "coordinate": "gaode"}
    baidu = coords.baidu_marker(*TIANANMEN_WGS, "ZS-1")
    assert baidu.startswith("https://api.map.baidu.com/marker?")
    assert _query(baidu) == {"location": f"{blat:.6f},{blon:.6f}", "title": "ZS-1", "content": "ZS-1",
                             "output": "html", "coord_type": "bd09ll", "src": "fieldbot"}
    to_amap = coords.amap_navigation(*TIANANMEN_WGS, "A,B")  # a comma in the name cannot split the field
    assert to_amap.startswith("https://uri.amap.com/navigation?")
    assert _query(to_amap) == {"to": f"{glon:.6f},{glat:.6f},A，B", "mode": "car", "coordinate": "gaode"}
    to_baidu = coords.baidu_navigation(*TIANANMEN_WGS, "天安门|东")
    assert to_baidu.startswith("https://api.map.baidu.com/direction?")
    assert _query(to_baidu) == {"destination": f"latlng:{blat:.6f},{blon:.6f}|name:天安门｜东", "mode": "driving",
                                "coord_type": "bd09ll", "output": "html", "src": "fieldbot"}
    assert " " not in amap + baidu + to_amap + to_baidu and "|" not in to_baidu


async def test_the_sos_alert_links_amap_to_the_gcj02_point(harness: BotHarness, office: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{office['case']}", forge=True))
    await harness.send(harness.updates.location(ANN, 31.2306, 121.4739))
    await harness.send(harness.updates.command(ANN, "/sos"))
    first = alerts(harness, BOSS)[0]
    assert "Location: 31.23060, 121.47390 (0 min ago)" in first  # the stored WGS-84 point, as it was
    glat, glon = coords.wgs84_to_gcj02(31.2306, 121.4739)
    assert f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}&coordinate=gaode" in first
    assert "position=121.473900,31.230600" not in first


async def test_the_case_card_offers_navigation_in_amap_and_baidu(harness: BotHarness, field: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.button(ANN, f"v:card:{field['case']}", forge=True))
    rows: list[list[dict[str, Any]]] = calls[-1].params["reply_markup"]["inline_keyboard"]
    links = {b["text"]: b["url"] for row in rows for b in row if "url" in b}
    assert links == {"🧭 Amap navigation": coords.amap_navigation(31.2304, 121.4737, "ZS-1"),
                     "🧭 Baidu navigation": coords.baidu_navigation(31.2304, 121.4737, "ZS-1")}
    glat, glon = coords.wgs84_to_gcj02(31.2304, 121.4737)
    blat, blon = coords.wgs84_to_bd09(31.2304, 121.4737)
    assert f"to={glon:.6f},{glat:.6f},ZS-1&" in links["🧭 Amap navigation"]
    assert f"destination=latlng:{blat:.6f},{blon:.6f}%7Cname:ZS-1&" in links["🧭 Baidu navigation"]
    assert all("callback_data" not in b for row in rows for b in row if "url" in b)


async def test_a_case_without_coordinates_has_no_navigation(harness: BotHarness, field: dict[str, int]) -> None:
    case_id = await add_case(harness, "ZS-9", field["ann"], None)
    calls = await harness.send(harness.updates.button(ANN, f"v:card:{case_id}", forge=True))
    rows = calls[-1].params["reply_markup"]["inline_keyboard"]
    assert not any("url" in b for row in rows for b in row)


class BaiduV3(OfflineGeocoder):
    """Named as geopy's: answers in BD-09, as Baidu does."""


async def test_a_baidu_answer_is_cached_as_wgs84(database: Database) -> None:
    bd = coords.wgs84_to_bd09(*TIANANMEN_WGS)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    found = await locate_many(database, BaiduV3({"天安门": bd}), ["北京市东城区天安门"], now=now)
    assert approx_meters(found["北京市东城区天安门"] or (0.0, 0.0), TIANANMEN_WGS) < 0.5
    plain = await locate_many(database, OfflineGeocoder({"外滩": (31.2400, 121.4900)}), ["上海市外滩"], now=now)
    assert plain == {"上海市外滩": (31.2400, 121.4900)}  # any other geocoder answers WGS-84 already
    async with database.read() as session:
        rows = {r.query: r for r in await session.scalars(select(GeocodeResult))}
    cached = rows["北京市东城区天安门"]
    assert cached.provider == "BaiduV3" and cached.lat is not None and cached.lon is not None
    assert approx_meters((cached.lat, cached.lon), TIANANMEN_WGS) < 0.5
    again = await locate_many(database, None, ["北京市东城区天安门"], now=now)  # from the cache, not converted twice
    assert again == {"北京市东城区天安门": (cached.lat, cached.lon)}
