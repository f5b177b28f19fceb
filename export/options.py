"""Export options and the delivery presets (ACX, podcast, none). Validated in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from export.errors import ExportError

FORMATS = ("mp3", "m4b", "flac", "wav")
SUBTITLE_FORMATS = ("srt", "vtt")


@dataclass(frozen=True)
class PauseOptions:
    """Silence (seconds) between the end of one chunk's speech and the start of the next, by boundary."""

    sentence: float = 0.4
    paragraph: float = 0.9
    heading: float = 1.2
    scene_break: float = 2.0
    clause: float = 0.25  # a long sentence cut at a clause boundary: a breath, not a full stop
    verse_line: float = 0.35  # the end of a verse line
    stanza: float = 1.0  # between stanzas: longer than a line end
    speaker: float = 0.6  # the end of a speech in a play, before the next speaker
    stage_direction: float = 0.7  # after a stage direction of its own
    aside: float = 0.35  # around a stage direction inside a speech

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 30.0:
                raise ExportError(f"pause {name}={value} s is outside 0..30 s")

    def after(self, boundary: str) -> float:
        # chapter_end in the middle of a chapter (should not happen) gets the longest in-chapter pause.
        return float(getattr(self, boundary)) if boundary != "chapter_end" else self.scene_break


@dataclass(frozen=True)
class Preset:
    name: str
    target_lufs: float | None
    true_peak_dbtp: float
    sample_rate: int | None
    bitrate_kbps: int
    rules: dict[str, Any] = field(default_factory=dict)


# ACX asks for RMS -23..-18 dB, peak <= -3 dB, noise floor <= -60 dB, 44.1 kHz mono MP3 CBR >= 192 kb/s,
# <= 120 min per file and room tone at head (0.5-1 s) and tail (1-5 s). Integrated -19 LUFS lands speech
# with natural pauses around -20..-21 dB RMS: inside the window with margin on both sides.
PRESETS: dict[str, Preset] = {
    "acx": Preset(
        "acx", -19.0, -3.0, 44100, 192,
        rules={"rms_db": (-23.0, -18.0), "peak_db": -3.0, "noise_floor_db": -60.0, "sample_rate": 44100,
               "mp3_cbr_min_kbps": 192, "max_minutes": 120.0, "mono": True,
               "head_room_tone_s": (0.5, 1.0), "tail_room_tone_s": (1.0, 5.0)},
    ),
    "podcast": Preset("podcast", -16.0, -1.0, 44100, 192, rules={"peak_db": -1.0, "loudness_lufs": (-17.0, -15.0)}),
    "none": Preset("none", None, -1.0, None, 192, rules={}),
}


@dataclass(frozen=True)
class ExportOptions:
    """How to export. Fields left at ``None`` are filled from the preset in ``__post_init__``."""

    format: str = "mp3"
    preset: str = "acx"
    single_file: bool = False
    target_lufs: float | None = None
    true_peak_dbtp: float | None = None
    sample_rate: int | None = None
    bitrate_kbps: int | None = None
    pauses: PauseOptions = field(default_factory=PauseOptions)
    head_room_tone_s: float = 0.75
    tail_room_tone_s: float = 2.0
    # Room tone level: -70 dBFS RMS of low-passed noise. Below ACX's -60 dB noise floor with 10 dB margin,
    # yet not digital silence (ACX reviewers reject dead-silent gaps as "processed"); it survives MP3.
    room_tone_dbfs: float = -70.0
    crossfade_ms: float = 20.0
    trim_keep_ms: float = 20.0
    trim_threshold_db: float = -40.0  # relative to the chunk's own active level
    gain_match_max_db: float = 4.0
    gain_match_strength: float = 0.7  # fraction of the distance to the running level that is corrected
    suspicious_ratio: float = 2.0  # seconds-per-phone beyond x2 or below /2 of the norm
    norm_seconds_per_phone: float | None = None  # the voice's norm when known; else each chapter's median
    loudness_tolerance_lu: float = 0.2  # pass-2 iterates until the limited output is this close
    seed: int = 0  # room tone noise; fixed so re-exports are byte-stable
    keep_temp: bool = False
    subtitles: str | None = None  # 'srt' | 'vtt': one subtitle file with sentence cues per audio file

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"unknown format {self.format!r} (expected one of {FORMATS})")
        if self.subtitles is not None and self.subtitles not in SUBTITLE_FORMATS:
            raise ExportError(f"unknown subtitle format {self.subtitles!r} (expected one of {SUBTITLE_FORMATS})")
        if self.preset not in PRESETS:
            raise ExportError(f"unknown preset {self.preset!r} (expected one of {tuple(PRESETS)})")
        preset = PRESETS[self.preset]
        if self.target_lufs is None and preset.target_lufs is not None:
            object.__setattr__(self, "target_lufs", preset.target_lufs)
        if self.true_peak_dbtp is None:
            object.__setattr__(self, "true_peak_dbtp", preset.true_peak_dbtp)
        if self.sample_rate is None:
            object.__setattr__(self, "sample_rate", preset.sample_rate)
        if self.bitrate_kbps is None:
            object.__setattr__(self, "bitrate_kbps", preset.bitrate_kbps)
        self._validate()

    def _validate(self) -> None:
        checks = [
            (self.target_lufs is None or -70.0 < self.target_lufs < 0.0, "target_lufs must be in (-70, 0)"),
            (self.true_peak_dbtp is not None and -20.0 <= self.true_peak_dbtp <= 0.0, "true_peak_dbtp in [-20, 0]"),
            (self.sample_rate is None or 8000 <= self.sample_rate <= 192000, "sample_rate in [8000, 192000]"),
            (self.bitrate_kbps is not None and 32 <= self.bitrate_kbps <= 320, "bitrate_kbps in [32, 320]"),
            (0.0 <= self.head_room_tone_s <= 10.0 and 0.0 <= self.tail_room_tone_s <= 30.0, "room tone length"),
            (-120.0 <= self.room_tone_dbfs <= -30.0, "room_tone_dbfs in [-120, -30]"),
            (1.0 <= self.crossfade_ms <= 100.0, "crossfade_ms in [1, 100]"),
            (0.0 <= self.trim_keep_ms <= 200.0, "trim_keep_ms in [0, 200]"),
            (-80.0 <= self.trim_threshold_db <= -10.0, "trim_threshold_db in [-80, -10]"),
            (0.0 <= self.gain_match_max_db <= 12.0, "gain_match_max_db in [0, 12]"),
            (0.0 <= self.gain_match_strength <= 1.0, "gain_match_strength in [0, 1]"),
            (self.suspicious_ratio > 1.0, "suspicious_ratio must be > 1"),
            (self.norm_seconds_per_phone is None or self.norm_seconds_per_phone > 0, "norm_seconds_per_phone > 0"),
            (0.01 <= self.loudness_tolerance_lu <= 1.0, "loudness_tolerance_lu in [0.01, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ExportError(f"invalid export options: {message}")

    @property
    def rules(self) -> dict[str, Any]:
        return PRESETS[self.preset].rules

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
