"""Peak memory of this process, for benchmarks and the model benchmark's table (stdlib only)."""
from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_bytes() -> int:
    """Peak RSS of this process image (VmHWM; ru_maxrss would include a parent's at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
