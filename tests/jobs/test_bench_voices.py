"""`render bench --version v2ProPlus`: the bench voice of a Pro version carries its speaker embedding, and
the vocoder stage runs on it (tiny size here; the bench uses full size)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jobs.bench.stages import sovits_figures
from jobs.bench.voices import bench_voice
from renderer.tuning import EngineTuning


def test_pro_bench_voice_renders_the_vocoder_stage(tmp_path: Path) -> None:
    from renderer.backends import open_engine

    voice = bench_voice(tmp_path, "v2ProPlus", log=lambda _msg: None, size="tiny")
    assert voice.version == "v2ProPlus" and voice.name == "bench-v2ProPlus"
    assert voice.ge is not None and np.isfinite(np.asarray(voice.ge)).all()
    engine = open_engine(voice, backend="torch", precision="fp32", tuning=EngineTuning(threads=1, measure=False))
    figures = sovits_figures(engine, n_tokens=8, batch=2, runs=1)
    assert [f.name for f in figures] == ["sovits_rtf_b1", "sovits_rtf_b2"]
    assert all(f.median > 0 and f.extra["gflops"] > 0 for f in figures)
