"""Benchmarks: every speed measurement of the project in one place (figures and methods: BENCHMARKS.md).

Nothing in the product imports this package; ``render bench`` (:mod:`jobs.cli.bench`) imports it lazily when
it runs, and ``tests/test_architecture.py`` checks both.

* :mod:`jobs.bench.measure` – figures (median/min/max), machine peak (GEMM, memory read), FLOP counts, RSS;
* :mod:`jobs.bench.stages` – the stages of ``render bench``: full-size random voice, GPT, SoVITS, chapter;
* :mod:`jobs.bench.step` – the GPT decode step, torch attention against the fused kernel, paired
  (``python -m jobs.bench.step``);
* :mod:`jobs.bench.sovits` – every CPU variant of the SoVITS decode side by side (``python -m jobs.bench.sovits``);
* :mod:`jobs.bench.text` – the text frontend, sentences per second (``python -m jobs.bench.text``);
* :mod:`jobs.bench.g2p` – the neural G2P for unknown English words against the dictionary
  (``python -m jobs.bench.g2p``);
* :mod:`jobs.bench.takes` – throughput with re-rolls off and on (``render bench-takes``);
* :mod:`jobs.bench.export_stream` – streaming export of hours of chunk files, peak RSS and time
  (``python -m jobs.bench.export_stream``).
"""
