"""China's map datums, and links to Chinese maps built from WGS-84 points.

fieldbot stores WGS-84 everywhere (what Telegram's locations and GPS give). Chinese maps do not use it:
Amap (高德) and Tencent use GCJ-02, a WGS-84 point moved by a deliberately irregular offset of a few
hundred metres, and Baidu uses BD-09, GCJ-02 moved once more. A WGS-84 point shown on Amap as if it
were GCJ-02 lands some 500 m off in Beijing. So coordinates are converted at the edges only: a link to
Amap is built from the GCJ-02 point, a link to Baidu from the BD-09 point (the ``*_marker`` and
``*_navigation`` helpers here), and a geocoder's answer in GCJ-02 or BD-09 is turned back into WGS-84
before it is stored.

Every function takes and returns ``(lat, lon)``, latitude first, in degrees, as the rest of fieldbot
does; only the URLs put the longitude first where the map's API wants it (Amap's ``position=LON,LAT``).

GCJ-02 applies inside mainland China only; outside it (by the usual rough bounding box,
:func:`in_china`) GCJ-02 equals WGS-84. GCJ-02 to WGS-84 has no closed form: it is solved by
iteration, to well under a millimetre. BD-09 is applied everywhere, as Baidu does.
"""

from __future__ import annotations

import math
from urllib.parse import quote

# GCJ-02 works on the Krasovsky 1940 ellipsoid.
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323  # the first eccentricity squared
# BD-09's own constant, and its fixed shift of GCJ-02.
X_PI = math.pi * 3000.0 / 180.0
BD_DLON, BD_DLAT = 0.0065, 0.006

_TOLERANCE_DEG = 1e-10  # about 0.01 mm: where the inverses stop iterating
_MAX_STEPS = 30

Point = tuple[float, float]  # (lat, lon) in degrees


def in_china(lat: float, lon: float) -> bool:
    """Whether the point is inside the rough box around mainland China where GCJ-02 differs from WGS-84.

    The box (latitude 0.8293..55.8271, longitude 72.004..137.8347) is the one every converter uses; it
    also takes in neighbours (Korea, Mongolia, part of Japan), which is harmless for fieldbot's work.
    """
    return 72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271


def _shift_lat(x: float, y: float) -> float:
    """GCJ-02's northward shift in metres-like units, of x = lon - 105, y = lat - 35."""
    shift = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    shift += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    shift += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    shift += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y / 30.0 * math.pi)) * 2.0 / 3.0
    return shift


def _shift_lon(x: float, y: float) -> float:
    """GCJ-02's eastward shift, of x = lon - 105, y = lat - 35."""
    shift = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    shift += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    shift += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    shift += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return shift


def _gcj_offset(lat: float, lon: float) -> Point:
    """The (dlat, dlon) in degrees that GCJ-02 adds to the WGS-84 point (lat, lon), box or not."""
    dlat = _shift_lat(lon - 105.0, lat - 35.0)
    dlon = _shift_lon(lon - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1.0 - KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    # the shift in metres over the meridian's and the parallel's radius of curvature, in degrees
    dlat = dlat * 180.0 / (KRASOVSKY_A * (1.0 - KRASOVSKY_EE) / (magic * sqrt_magic) * math.pi)
    dlon = dlon * 180.0 / (KRASOVSKY_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> Point:
    """WGS-84 → GCJ-02 (Amap, Tencent); outside China the point itself."""
    if not in_china(lat, lon):
        return lat, lon
    dlat, dlon = _gcj_offset(lat, lon)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> Point:
    """GCJ-02 → WGS-84, by iteration: the WGS-84 point whose GCJ-02 is (lat, lon), to about 0.01 mm."""
    if not in_china(lat, lon):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(_MAX_STEPS):
        dlat, dlon = _gcj_offset(wlat, wlon)
        err_lat, err_lon = wlat + dlat - lat, wlon + dlon - lon
        wlat, wlon = wlat - err_lat, wlon - err_lon
        if max(abs(err_lat), abs(err_lon)) < _TOLERANCE_DEG:
            break
    return wlat, wlon


def gcj02_to_bd09(lat: float, lon: float) -> Point:
    """GCJ-02 → BD-09 (Baidu)."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * X_PI)
    return z * math.sin(theta) + BD_DLAT, z * math.cos(theta) + BD_DLON


def bd09_to_gcj02(lat: float, lon: float) -> Point:
    """BD-09 → GCJ-02: the usual closed-form inverse, then refined until it maps back to (lat, lon)."""
    x, y = lon - BD_DLON, lat - BD_DLAT
    z = math.hypot(x, y) - 0.00002 * math.sin(y * X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * X_PI)
    glat, glon = z * math.sin(theta), z * math.cos(theta)
    for _ in range(_MAX_STEPS):
        blat, blon = gcj02_to_bd09(glat, glon)
        err_lat, err_lon = blat - lat, blon - lon
        if max(abs(err_lat), abs(err_lon)) < _TOLERANCE_DEG:
            break
        glat, glon = glat - err_lat, glon - err_lon
    return glat, glon


def wgs84_to_bd09(lat: float, lon: float) -> Point:
    """WGS-84 → BD-09, through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))


def bd09_to_wgs84(lat: float, lon: float) -> Point:
    """BD-09 → WGS-84, through GCJ-02."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def _q(text: str) -> str:
    return quote(text, safe="")


def _in_field(name: str) -> str:
    """A name inside a field the map splits on "," or "|" (Amap's ``to``, Baidu's ``destination``) gets
    the full-width forms of those, which it shows as they are."""
    return name.replace(",", "，").replace("|", "｜")


def amap_marker(lat: float, lon: float, name: str | None = None) -> str:
    """An Amap page with a marker on the WGS-84 point (sent as GCJ-02)."""
    glat, glon = wgs84_to_gcj02(lat, lon)
    link = f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}"
    if name:
        link += f"&name={_q(name)}"
    return link + "&coordinate=gaode"


def baidu_marker(lat: float, lon: float, name: str, content: str | None = None) -> str:
    """A Baidu map page with a marker on the WGS-84 point (sent as BD-09)."""
    blat, blon = wgs84_to_bd09(lat, lon)
    return (f"https://api.map.baidu.com/marker?location={blat:.6f},{blon:.6f}&title={_q(name)}"
            f"&content={_q(content or name)}&output=html&coord_type=bd09ll&src=fieldbot")


def amap_navigation(lat: float, lon: float, name: str) -> str:
    """Amap's driving directions to the WGS-84 point (sent as GCJ-02), from where the phone is."""
    glat, glon = wgs84_to_gcj02(lat, lon)
    return f"https://uri.amap.com/navigation?to={glon:.6f},{glat:.6f},{_q(_in_field(name))}&mode=car&coordinate=gaode"


def baidu_navigation(lat: float, lon: float, name: str) -> str:
    """Baidu's driving directions to the WGS-84 point (sent as BD-09), from where the phone is."""
    blat, blon = wgs84_to_bd09(lat, lon)
    destination = f"latlng:{blat:.6f},{blon:.6f}%7Cname:{_q(_in_field(name))}"  # the "|" escaped, as a URL wants
    return (f"https://api.map.baidu.com/direction?destination={destination}"
            "&mode=driving&coord_type=bd09ll&output=html&src=fieldbot")
