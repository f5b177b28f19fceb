"""Test-only entry point: open a job store and stop in the middle of its migration, to be killed.

    python -m tests.jobs.migration_victim URL READY_FILE

The version-2 step is wrapped so that, after its chunks table was rebuilt (on SQLite: copied into a
new table, the old one dropped, the new one renamed) and before its workers table is altered, the
process writes READY_FILE and sleeps: the test then kills it with SIGKILL inside the open migration
transaction. The product has no such hook.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from jobs.migrations import steps


def main() -> None:
    url, ready = sys.argv[1], Path(sys.argv[2])
    original = steps._v2_workers

    def paused(ops: Any) -> None:
        ready.write_text("mid-migration\n")
        time.sleep(120)
        original(ops)

    steps._v2_workers = paused  # type: ignore[assignment]
    from jobs.db import make_engine

    make_engine(url).dispose()


if __name__ == "__main__":
    main()
