"""Pareto fronts of (latency, accuracy) points: lower latency and higher accuracy are both better."""

from __future__ import annotations


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points, by increasing latency.

    A point is optimal when no other point is at least as fast and at least as accurate and strictly better in
    one of the two. Ties (the same latency and accuracy twice) keep both."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        lat, acc = points[i]
        if acc > best:
            front.append(i)
            best = acc
        elif acc == best and front and points[front[-1]] == (lat, acc):
            front.append(i)
    return front


def interval_fronts(points: list[tuple[float, float, float]]) -> tuple[list[int], list[int]]:
    """(surely optimal, possibly optimal) indices of points ``(low_ms, high_ms, accuracy)`` whose latency is
    only known to lie in [low, high]: a point is surely Pareto-optimal when no other point can dominate it
    however the latencies fall (it at its slowest, the rest at their fastest), possibly optimal when at least
    one way the latencies may fall leaves it on the front (it at its fastest, the rest at their slowest). The
    surely-optimal points are a subset of the possibly-optimal ones; both lists are by increasing low latency."""

    def dominated(i: int, mine: float, theirs: int) -> bool:  # theirs: 0 = others' low, 1 = others' high
        lat_i, acc_i = mine, points[i][2]
        for j, p in enumerate(points):
            if j == i:
                continue
            lat_j, acc_j = p[theirs], p[2]
            if lat_j <= lat_i and acc_j >= acc_i and (lat_j < lat_i or acc_j > acc_i):
                return True
        return False

    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][2]))
    sure = [i for i in order if not dominated(i, points[i][1], 0)]
    possible = [i for i in order if not dominated(i, points[i][0], 1)]
    return sure, possible
