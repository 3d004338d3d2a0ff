"""Fuzzing in CI: every case of the seeded hostile corpus (tests/fuzz_corpus.py) goes through
`main.py info` in this process, each file decoded in a sandboxed child. Allowed outcomes: it
loads, or a one-line refusal. Never a traceback, a reader killed by a signal, a hang, or a
decoder growing past the memory cap."""
import resource
import time
from collections import Counter

import pytest

import main
from formats import sandbox
from tests import fuzz_corpus

BUDGET = 512 << 20  # DELINEATE_MAX_IMAGE_BYTES for the run: the biggest image a header may declare
RSS_CAP = 2 << 30  # any decoding child, above what it started with (a forked child shares our pages)
STALL_S = 20  # the sandbox stops a reader silent this long; a case taking longer counts as a hang


@pytest.fixture
def hostile_env(monkeypatch):
    monkeypatch.setenv("DELINEATE_MAX_IMAGE_BYTES", str(BUDGET))
    monkeypatch.setenv("DELINEATE_DECODE_TIMEOUT_S", str(STALL_S))
    monkeypatch.delenv("DELINEATE_DECODE_IN_PROCESS", raising=False)
    monkeypatch.delenv("DELINEATE_DECODE_MAX_BYTES", raising=False)


def _info(path, capsys) -> tuple[str, str, float, int]:
    t0 = time.monotonic()
    sandbox.last_peak_rss = sandbox.last_start_rss = 0
    try:
        rc = main.main(["info", str(path)])
    except Exception as exc:  # noqa: BLE001 - exactly what this test hunts
        capsys.readouterr()
        return "traceback", f"{type(exc).__name__}: {exc}", time.monotonic() - t0, 0
    _, err = capsys.readouterr()
    growth = max(0, sandbox.last_peak_rss - sandbox.last_start_rss)
    wall = time.monotonic() - t0
    if "crashed (signal" in err or "was killed" in err or "stopped unexpectedly" in err:
        return "signal", err.strip(), wall, growth
    if "made no progress" in err or wall > STALL_S + 10:
        return "hang", err.strip(), wall, growth
    if rc == 0:
        return "loaded", "", wall, growth
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    if rc == 2 and len(lines) == 1 and str(path.name) in lines[0]:
        return "refused", lines[0], wall, growth
    return "unclear", f"rc {rc}: {err.strip()[-300:]}", wall, growth


def test_hostile_corpus_gives_only_loads_and_clean_refusals(tmp_path, hostile_env, capsys):
    cases = fuzz_corpus.build(tmp_path)
    assert len(cases) >= 280
    counts, bad, peak, slowest = Counter(), [], 0, (0.0, "")
    for case in cases:
        outcome, detail, wall, growth = _info(case.path, capsys)
        counts[outcome] += 1
        peak = max(peak, growth)
        slowest = max(slowest, (wall, case.origin))
        if outcome not in ("loaded", "refused"):
            bad.append(f"{case.origin} ({case.path.name}): {outcome}: {detail[:300]}")
        if growth > RSS_CAP:
            bad.append(f"{case.origin} ({case.path.name}): decoder grew {growth >> 20} MiB")
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    summary = (f"{len(cases)} cases: {dict(counts)}; largest decoder growth {peak >> 20} MiB; "
               f"this process peaked at {parent} MiB; slowest case {slowest[0]:.1f} s ({slowest[1]})")
    print(summary)
    assert not bad, summary + "\n" + "\n".join(bad)
    assert counts["loaded"] >= 20 and counts["refused"] >= 150, summary  # the corpus exercises both


def test_accepted_gzip_bomb_loads_at_its_declared_size(tmp_path, hostile_env, capsys):
    """300 MB of zeros in a 300 KB .nii.gz: accepted (under the budget), decoded at <= 1.2x."""
    declared = 300 << 20
    bomb = fuzz_corpus.nifti_bomb(tmp_path / "bomb.nii.gz", declared)
    assert bomb.stat().st_size < declared // 500
    outcome, detail, _, growth = _info(bomb, capsys)
    assert outcome == "loaded", detail
    assert growth <= 1.2 * declared, f"decoder grew {growth >> 20} MiB for {declared >> 20} MiB declared"


def test_refused_bomb_costs_no_memory(tmp_path, hostile_env, capsys):
    bomb = fuzz_corpus.write_nifti(tmp_path, "huge", lambda h: h.__setitem__("dim", [3, 30000, 30000, 30000, 1, 1, 1, 1]),
                                   gz=True)
    outcome, detail, _, growth = _info(bomb, capsys)
    assert outcome == "refused" and "more than" in detail, detail
    assert growth < 64 << 20
