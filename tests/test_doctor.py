"""`render doctor` reports real checks, and JSON output is machine-readable."""

from __future__ import annotations

import json

from click.testing import CliRunner

from jobs.cli import cli


def test_doctor_json_lists_core_checks() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)}
    assert checks["torch (cpu)"]["ok"] is True
    assert "onnxruntime" in checks
    assert checks["mp3 encoder (libsndfile)"]["ok"] is True
    assert checks["--backend torch --device cpu"]["ok"] is True
    assert checks["--backend onnx --device cpu"]["ok"] is True
    # TensorRT needs a GPU: where there is none, the reason is given instead of a crash.
    if not checks["torch (cuda)"]["ok"]:
        assert checks["--backend tensorrt --device cuda"]["ok"] is False
        assert checks["--backend tensorrt --device cuda"]["detail"]
