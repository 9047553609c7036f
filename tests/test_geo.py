"""The list's quick distance stays within what its docstring promises of the geodesic."""

from __future__ import annotations

import pytest

from bot.services.geo import approx_meters, geodesic


@pytest.mark.parametrize(("a", "b"), [
    ((31.2304, 121.4737), (31.2404, 121.4737)),  # 1.1 km north in Shanghai
    ((31.2304, 121.4737), (31.2304, 121.4837)),  # 950 m east
    ((31.2304, 121.4737), (31.3000, 121.6000)),  # across the city
    ((22.5431, 114.0579), (22.5500, 114.1000)),  # Shenzhen
    ((45.7500, 126.6500), (45.8000, 126.7000)),  # Harbin, further north
    ((39.9042, 116.4074), (31.2304, 121.4737)),  # Beijing to Shanghai
])
def test_the_quick_distance_is_within_half_a_percent_of_the_geodesic(a: tuple[float, float],
                                                                      b: tuple[float, float]) -> None:
    exact = geodesic(a, b).meters
    assert abs(approx_meters(a, b) - exact) <= 0.005 * exact


def test_the_same_place_is_no_distance() -> None:
    assert approx_meters((31.2304, 121.4737), (31.2304, 121.4737)) == 0.0
