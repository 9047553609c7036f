"""Today's stops in a sensible order: nearest neighbour, then 2-opt, on geodesic distances; and a picture."""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from bot.services.geo import geodesic

Point = tuple[float, float]


@dataclass(frozen=True)
class Route:
    order: list[int]  # indexes into the stops, in visiting order
    legs_m: list[float]  # distance of each leg, from the start (if any) to the last stop
    total_m: float


def _matrix(points: Sequence[Point]) -> list[list[float]]:
    n = len(points)
    dist = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            dist[i][j] = dist[j][i] = geodesic(points[i], points[j]).meters
    return dist


def _length(path: Sequence[int], dist: list[list[float]]) -> float:
    return sum(dist[a][b] for a, b in itertools.pairwise(path))


def plan_route(stops: Sequence[Point], start: Point | None = None) -> Route:
    """An open path through every stop, beginning at ``start`` (the collector) when known."""
    if not stops:
        return Route([], [], 0.0)
    points = [start, *stops] if start is not None else list(stops)
    dist = _matrix(points)
    first = 0
    path = [first]
    left = set(range(len(points))) - {first}
    while left:
        here = path[-1]
        nearest = min(left, key=lambda j: (dist[here][j], j))
        path.append(nearest)
        left.remove(nearest)
    improved = True
    while improved:  # 2-opt: reverse any segment that shortens the path (the first point stays first)
        improved = False
        for i in range(1, len(path) - 1):
            for k in range(i + 1, len(path)):
                candidate = path[:i] + path[i:k + 1][::-1] + path[k + 1:]
                if _length(candidate, dist) + 1e-6 < _length(path, dist):
                    path, improved = candidate, True
    legs = [dist[a][b] for a, b in itertools.pairwise(path)]
    order = [p - 1 for p in path[1:]] if start is not None else path
    return Route(order, legs, sum(legs))


def render_route_png(stops: Sequence[Point], labels: Sequence[str], route: Route, start: Point | None) -> bytes:
    """A small map-less picture of the route: numbered stops joined in order, the start as a star."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    try:
        ordered = [stops[i] for i in route.order]
        path = ([start] if start is not None else []) + ordered
        ax.plot([p[1] for p in path], [p[0] for p in path], "-", color="#1f77b4", linewidth=2, zorder=1)
        for n, i in enumerate(route.order, start=1):
            lat, lon = stops[i]
            ax.scatter([lon], [lat], s=260, color="#ff7f0e", zorder=2)
            ax.annotate(str(n), (lon, lat), ha="center", va="center", color="white", fontweight="bold", zorder=3)
            ax.annotate(labels[i], (lon, lat), xytext=(8, 8), textcoords="offset points", fontsize=8)
        if start is not None:
            ax.scatter([start[1]], [start[0]], marker="*", s=320, color="#2ca02c", zorder=3)
        ax.set_xlabel("lon")
        ax.set_ylabel("lat")
        ax.set_title(f"{len(route.order)} stops, {route.total_m / 1000:.1f} km")
        ax.grid(True, alpha=0.3)
        ax.set_aspect("equal", adjustable="datalim")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)
