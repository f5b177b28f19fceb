"""Text → tokens → audio: text frontend, GPT-SoVITS models, batched engine and runtimes.

This package knows nothing of books, databases or the files of a job; ``jobs`` calls it.
"""

__version__ = "0.1.0"
