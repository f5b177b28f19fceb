"""Takes of a chunk: which seed each take uses, and what to do after one was scored.

Take 1 of a chunk is rendered under its render key, exactly as without re-rolls, so turning re-rolls on
changes no clean chunk. Take n > 1 is rendered under the key ``<render key>~<n>``: the engine derives a
chunk's random stream from its request key (``row_seed(seed, key)``), so take n always gets the same
stream: the same book renders the same takes, on any worker, in any batch. A re-roll is just another
chunk in the next claim, batched with the rest.

After each take: a clean take is kept at once; a bad one is re-rolled until ``max_takes``; then the
best-scoring take is kept and the chunk stays *doubtful* for a person (``render review``). The audio of
discarded takes is deleted once a clean take is kept or a person decided; a doubtful chunk keeps every
take's audio so the review page can play them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobs.errors import JobsError
from renderer.takes import TakeOptions, TakeScore, best_take

__all__ = ["DEFAULT_MAX_TAKES", "TakeDecision", "TakePolicy", "decide", "parse_take_key", "take_key"]

#: Takes rendered at most per chunk unless ``--max-takes`` says otherwise.
DEFAULT_MAX_TAKES = 3
#: Separates the render key from the take number in a request key (render keys are hex digests).
TAKE_SEPARATOR = "~"


def take_key(render_key: str, take: int) -> str:
    """Request key (and audio file stem) of take ``take`` (1-based) of a chunk."""
    if take < 1:
        raise JobsError(f"take numbers start at 1, got {take}")
    return render_key if take == 1 else f"{render_key}{TAKE_SEPARATOR}{take}"


def parse_take_key(key: str) -> tuple[str, int]:
    """(render key, take number) of a request key made by :func:`take_key`."""
    render_key, sep, number = key.partition(TAKE_SEPARATOR)
    if not sep:
        return key, 1
    if not number.isdigit() or int(number) < 2:
        raise JobsError(f"not a take key: {key!r}")
    return render_key, int(number)


@dataclass(frozen=True)
class TakePolicy:
    """How many takes a chunk may get and how they are judged. ``max_takes=1`` scores every take
    (the review and the report still list doubtful chunks) but never re-rolls."""

    max_takes: int = DEFAULT_MAX_TAKES
    options: TakeOptions = field(default_factory=TakeOptions)

    def __post_init__(self) -> None:
        if not 1 <= self.max_takes <= 20:
            raise JobsError(f"--max-takes must be between 1 and 20, got {self.max_takes}")


@dataclass(frozen=True)
class TakeDecision:
    """``reroll``: render take ``next_take``; otherwise keep take ``keep`` (1-based), ``doubtful`` when even
    that one is bad."""

    reroll: bool
    next_take: int = 0
    keep: int = 0
    doubtful: bool = False


def decide(scores: Sequence[TakeScore], max_takes: int) -> TakeDecision:
    """What to do after the takes scored so far (``scores[i]`` is take i + 1)."""
    if not scores:
        raise JobsError("a decision needs at least one scored take")
    latest = scores[-1]
    if latest.bad and len(scores) < max_takes:
        return TakeDecision(reroll=True, next_take=len(scores) + 1)
    best = best_take(scores)
    return TakeDecision(reroll=False, keep=best + 1, doubtful=scores[best].bad)
