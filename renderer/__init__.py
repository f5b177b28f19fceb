"""Text → tokens → audio: text frontend, GPT-SoVITS models, batched engine and runtimes.

This package knows nothing of books, databases or the files of a job; ``jobs`` calls it. Importing it
changes nothing in the process: the process-wide settings (oneDNN's cache, glibc's mmap threshold) are
applied when an engine is built (:func:`renderer.tuning.apply_process_settings`).
"""

__version__ = "0.1.0"
