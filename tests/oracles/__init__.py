"""Test oracles: slow, obviously-correct re-statements of upstream GPT-SoVITS that the engine is checked
against (never imported by the product)."""
