"""Test doubles that satisfy the product's protocols: the fake engine factory (``engine.py``), job hooks and
audio writers for crash tests (``hooks.py``), and ``run_cli.py``, the CLI entry point that installs them."""
