"""Named pause points for crash tests (inactive unless the environment asks for them).

``RENDER_TEST_PAUSE_AT="write:2"`` makes the process stop the 2nd time it passes the point named
``write``: it writes the point's name to ``RENDER_TEST_PAUSE_FILE`` (so the test knows where it
is) and sleeps until it is killed. Several points may be given, comma separated. Points in the
code: ``plan`` (inside the plan transaction), ``claim`` (inside the claim transaction),
``synth`` (audio synthesised, nothing written), ``write`` (half of a chunk's temporary file
written), ``rename`` (file in place, chunk not yet marked done), ``done`` (some chunks of a batch
marked done), ``export`` (chapter files exported to the staging folder), ``publish`` (some
exported files moved into place).
"""

from __future__ import annotations

import os
import time
from collections import Counter

_hits: Counter[str] = Counter()


def _targets() -> dict[str, int]:
    spec = os.environ.get("RENDER_TEST_PAUSE_AT", "")
    targets = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        name, _, nth = item.strip().partition(":")
        targets[name] = int(nth or 1)
    return targets


def pause_point(name: str) -> None:
    """Pause forever here if a crash test asked for it; otherwise do nothing (cheap)."""
    if "RENDER_TEST_PAUSE_AT" not in os.environ:
        return
    _hits[name] += 1
    nth = _targets().get(name)
    if nth is None or _hits[name] != nth:
        return
    marker = os.environ.get("RENDER_TEST_PAUSE_FILE")
    if marker:
        with open(marker, "w", encoding="utf-8") as f:
            f.write(name)
            f.flush()
            os.fsync(f.fileno())
    while True:  # the test kills us with SIGKILL
        time.sleep(60)


def wait_for_gate() -> None:
    """Concurrency tests: ``RENDER_TEST_START_GATE=<file>`` holds a worker until the file exists,
    so that several worker processes start claiming at the same moment."""
    gate = os.environ.get("RENDER_TEST_START_GATE")
    if not gate:
        return
    deadline = time.monotonic() + 120
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
