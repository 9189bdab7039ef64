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
