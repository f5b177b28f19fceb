"""`render doctor`: what is installed, which backends and devices work on this machine."""

from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from renderer.engine.autotune import MeasuredSettings


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str


def _module_version(name: str) -> str | None:
    try:
        module = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    return str(getattr(module, "__version__", "installed"))


def _torch_checks() -> list[Check]:
    checks = []
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return [Check("torch", False, f"cannot import: {exc}")]
    x = torch.randn(64, 64)
    ok = bool(torch.isfinite(x @ x).all())
    checks.append(Check("torch (cpu)", ok, f"{torch.__version__}, {torch.get_num_threads()} threads"))
    from renderer.hardware import cpu_flags, cpu_has_bf16

    flags = cpu_flags()
    bf16 = cpu_has_bf16()
    checks.append(Check("cpu bf16 (AMX / AVX-512-BF16)", bf16,
                        ", ".join(sorted(f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512_vnni"))))
                        or "not supported by this CPU"))
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        y = torch.randn(64, 64, device="cuda")
        checks.append(Check("torch (cuda)", bool(torch.isfinite(y @ y).all().item()), name))
    else:
        checks.append(Check("torch (cuda)", False, "no CUDA device visible (CPU build or no GPU)"))
    return checks


def _onnx_checks() -> list[Check]:
    try:
        import onnxruntime as ort
    except Exception as exc:  # noqa: BLE001
        return [Check("onnxruntime", False, f"not installed ({exc}); pip install 'audiobook-renderer[cpu]'")]
    providers = ort.get_available_providers()
    checks = [Check("onnxruntime", True, f"{ort.__version__}: {', '.join(providers)}")]
    for provider, label in (("CUDAExecutionProvider", "onnxruntime cuda"),
                            ("TensorrtExecutionProvider", "onnxruntime tensorrt")):
        checks.append(Check(label, provider in providers,
                            "available" if provider in providers else "provider not in this build"))
    return checks


def _tool_checks() -> list[Check]:
    checks = []
    trt = _module_version("tensorrt")
    checks.append(Check("tensorrt (native engines)", trt is not None,
                        trt or "not installed (GPU machines only: pip install tensorrt)"))
    try:
        import soundfile as sf

        mp3 = "MP3" in sf.available_formats()
        checks.append(Check("mp3 encoder (libsndfile)", mp3, f"libsndfile {sf.__libsndfile_version__}"))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("mp3 encoder (libsndfile)", False, str(exc)))
    ffmpeg = shutil.which("ffmpeg")
    checks.append(Check("ffmpeg (M4B export)", ffmpeg is not None, ffmpeg or "not found: apt-get install ffmpeg"))
    psycopg = _module_version("psycopg")
    checks.append(Check("PostgreSQL driver", psycopg is not None,
                        psycopg or "not installed: pip install 'audiobook-renderer[postgres]'"))
    return checks


def _engine_backend_checks() -> list[Check]:
    """What `--backend torch|onnx|tensorrt` would do with `--device cpu` and `--device cuda`."""
    try:
        from renderer.backends import backend_status
    except Exception as exc:  # noqa: BLE001
        return [Check("engine backends", False, f"cannot import the engine: {exc}")]
    checks = []
    for device in ("cpu", "cuda"):
        for backend, state in backend_status(device).items():
            checks.append(Check(f"--backend {backend} --device {device}", state == "ok", state))
    return checks


def _tuning_checks() -> list[Check]:
    """The engine tuning this environment gives (renderer.tuning), one line per knob; a bad value fails."""
    try:
        from renderer.tuning import EngineTuning

        tuning = EngineTuning.resolve()
    except Exception as exc:  # noqa: BLE001 - a malformed RENDER_* variable is reported, not raised
        return [Check("engine tuning", False, str(exc))]
    return [Check(f"tuning {name}", True, f"{value}  [{where}]") for name, value, where in tuning.describe()]


def _cpu_checks() -> list[Check]:
    from renderer.hardware import cpu_info, cpu_isa

    cpu = cpu_info()
    return [Check("cpu", bool(cpu.model), f"{cpu.model or 'unknown model'}; {', '.join(cpu_isa()) or 'no AVX2'}")]


def measured_settings_checks(voice: str | None = None, voices_dir: str | None = None, precision: str = "auto",
                             threads: int | None = None, remeasure: bool = False) -> list[Check]:
    """The engine settings measured on this machine (renderer.engine.autotune) and why they were chosen.

    With ``voice``: that voice's, measured now when they are not cached (a few seconds), as a worker rendering
    with it on this machine gets them. Without: every cached choice."""
    from renderer.engine.autotune import cached_settings

    if voice is None:
        found = cached_settings()
        if not found:
            return [Check("measured settings", True, "none yet: measured on the first render with each voice "
                                                     "(`render doctor --voice NAME` measures now)")]
        return [line for settings in found for line in _settings_lines(settings)]
    try:
        from renderer.backends import open_engine
        from renderer.engine.autotune import measured_settings, wants_measurement
        from renderer.tuning import EngineTuning
        from renderer.voice import VoiceStore

        loaded = VoiceStore(voices_dir).get(voice)
        tuning = EngineTuning.resolve({"threads": threads})
        engine = open_engine(loaded, precision=precision, tuning=tuning.with_overrides(measure=False))
        if not wants_measurement(tuning, engine.backend):
            return [Check("measured settings", True, f"voice {voice}: not measured (settings given explicitly, "
                                                     "RENDER_MEASURE_SETTINGS=0, or a backend that is not measured)")]
        return _settings_lines(measured_settings(loaded, engine.backend, tuning, refresh=remeasure))
    except Exception as exc:  # noqa: BLE001 - the doctor reports, never raises
        return [Check("measured settings", False, f"voice {voice}: {exc}")]


def _settings_lines(settings: MeasuredSettings) -> list[Check]:
    from renderer.engine.autotune import measured_when_busy

    info = settings.info
    head = (f"voice {info.get('voice', '?')}, {info.get('precision', '?')}, {info.get('threads', '?')} threads: "
            f"GPT batch {settings.batch_size}, vocoder batch {settings.vocoder_batch}, "
            f"{'vocoder beside the GPT' if settings.overlap else 'stages in turn'} "
            f"(measured {info.get('measured_at', '?')} in {settings.measurements.seconds:.1f} s, "
            f"load {info.get('load_average', '?')})")
    if measured_when_busy(settings):
        head += "; measured on a busy machine: measured again on the first run when it is quiet"
    return [Check("measured settings", True, head)] + [Check("  why", True, reason) for reason in settings.reasons]


def collect_checks() -> list[Check]:
    """Run every check; never raises."""
    checks = [Check("python", True, f"{platform.python_version()} on {platform.machine()}, "
                                    f"{os.cpu_count()} logical CPUs")]
    checks += _cpu_checks()
    checks += _torch_checks()
    checks += _onnx_checks()
    checks += _engine_backend_checks()
    checks += _tool_checks()
    try:
        from renderer.voice import voices_dir

        checks.append(Check("voices folder", True, str(voices_dir())))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("voices folder", False, str(exc)))
    checks += _tuning_checks()
    checks += measured_settings_checks()
    return checks


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--voice", default=None,
              help="Also show the engine settings measured for this voice here (measuring them now if needed).")
@click.option("--voices-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of voices for --voice (default: $RENDER_VOICES_DIR or the user's voice folder).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="Precision whose measured settings --voice shows.")
@click.option("--threads", type=int, default=None, help="CPU threads whose settings --voice shows (default: all).")
@click.option("--remeasure", is_flag=True,
              help="With --voice: measure the settings again and replace the cached ones (after a change of "
                   "machine load or hardware; a busy machine measures wrong).")
def doctor(as_json: bool, voice: str | None, voices_dir: str | None, precision: str, threads: int | None,
           remeasure: bool) -> None:
    """Show what is installed, which backends and devices work here, and the engine tuning in effect.

    The tuning lines show each knob's value and the environment variable that sets it (marked "set" when
    it is), see renderer/tuning.py. The measured-settings lines show the GPT batch, vocoder batch and
    thread split measured on this machine per voice and precision, and why each was chosen."""
    checks = collect_checks()
    if voice is not None:
        checks = [c for c in checks if c.name.strip() not in ("measured settings", "why")]
        checks += measured_settings_checks(voice, voices_dir, precision, threads, remeasure)
    if as_json:
        click.echo(json.dumps([asdict(c) for c in checks], indent=2))
        return
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = "ok " if check.ok else "-- "
        click.echo(f"{mark} {check.name.ljust(width)}  {check.detail}")


COMMANDS = [doctor]
