"""Shared by the benchmarks."""
from __future__ import annotations

from core.memory import peak_rss_bytes


def peak_rss_mib() -> float:
    return peak_rss_bytes() / 2**20
