"""Take keys and the re-roll decision (pure logic; the loop itself is in test_takes_loop.py)."""

from __future__ import annotations

import pytest

from jobs.errors import JobsError
from jobs.takes import TakePolicy, decide, parse_take_key, take_key
from renderer.engine.options import row_seed
from renderer.takes import Reason, TakeScore

CLEAN = TakeScore(0.0, False, ())
BAD = TakeScore(2.0, True, (Reason("token_cap", 2.0, "stopped at the cap"),))
WORSE = TakeScore(3.0, True, (Reason("loop", 3.0, "a loop"),))


def test_take_one_keeps_the_render_key_and_later_takes_get_their_own_stream() -> None:
    key = "ab" * 32
    assert take_key(key, 1) == key
    keys = [take_key(key, n) for n in range(1, 5)]
    assert [parse_take_key(k) for k in keys] == [(key, n) for n in range(1, 5)]
    assert len({row_seed(0, k) for k in keys}) == 4  # every take samples a different stream
    with pytest.raises(JobsError):
        take_key(key, 0)
    with pytest.raises(JobsError):
        parse_take_key(key + "~1")


def test_a_bad_take_is_rerolled_until_the_cap_then_the_best_is_kept_as_doubtful() -> None:
    assert decide([CLEAN], 3).keep == 1 and not decide([CLEAN], 3).doubtful
    assert decide([BAD], 3).reroll and decide([BAD], 3).next_take == 2
    assert decide([BAD, CLEAN], 3).keep == 2 and not decide([BAD, CLEAN], 3).doubtful
    final = decide([WORSE, BAD, WORSE], 3)
    assert not final.reroll and final.keep == 2 and final.doubtful
    assert decide([BAD], 1).doubtful and decide([BAD], 1).keep == 1  # --max-takes 1: scored, never re-rolled
    with pytest.raises(JobsError):
        decide([], 3)
    with pytest.raises(JobsError, match="max-takes"):
        TakePolicy(max_takes=0)
