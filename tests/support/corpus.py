"""The labelled corpus: synthetic camera clips with and without defects, as real H.264 files.

Each clip is rendered from `demo.scene` (a seeded world with people, cars, lamps and
sensor noise), spoilt by one defect or not at all, and encoded with libx264 the way an IP
camera does (yuv420p, one keyframe a second, no B-frames). Thresholds are chosen on one set
of seeds and scored on another; `bench/quality_report.py` and the tests build it with
`build_corpus`, and `day_cycle` makes one clean camera-day for counting false alarms.

How the clip-level problems are made (see also demo/scene/):
- `frozen`: live for `ONSET_S`, then the picture rendered at the onset is fed to the
  encoder again and again (the stream keeps flowing; the encoder re-encodes it);
- `scene_changed`: pan 0 for `ONSET_S`, then the camera is turned by `SCENE_CHANGE_PAN`;
- `low_fps`: the whole clip encoded at `LOW_FPS[strength]` frames a second.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from demo.scene import (
    DEFECTS,
    SCENE_CHANGE_PAN,
    STRENGTHS,
    VARIANTS,
    Scene,
    apply_gain,
    defect,
    settling_gain,
)

# Scene kinds the clips rotate through; `garden` is kept for the colourful hard negative.
ROTATION = ("street", "shop", "parking")
# Where frozen and scene_changed clips turn bad (and exposure_settling overshoots).
ONSET_S = 2.0
# Encoded frame rates of low_fps clips; the agent's default expectation is min_fps 5.
LOW_FPS = {"mild": 4, "clear": 2}
CLIP_DEFECTS = ("frozen", "scene_changed", "low_fps")
HARD_NEGATIVES = (
    "night_static",  # nothing moves at night, live sensor noise: not frozen
    "ir_night",  # infrared greyscale: not colour_cast
    "dark_detailed",  # night street with lamps and lit windows: not too_dark
    "traffic",  # busy, and a lorry passing close by: not scene_changed
    "daylight_ramp",  # daylight changing through the clip
    "exposure_settling",  # +60 % overshoot settling in 2 s: not too_bright
    "colourful",  # red brick, green hedge, blue shutters: not colour_cast
)
# Daylight of ordinary daytime clips (auto-exposure keeps these looking normal).
DAY_LIGHT = (0.6, 1.0)
# Mean objects in view for the traffic case, and a quiet night.
BUSY = 9.0
QUIET = 0.6
# libx264 like a camera: about 1 Mbit/s at 640x360 (scaled with the pixel count), capped
# like a camera's VBR so a noisy picture cannot take 5 Mbit/s.
KBPS_640x360 = 1000
PRESET = "veryfast"
# All-intra day cycle: each sample gets about what one keyframe of such a stream gets.
KEYFRAME_KBITS_640x360 = 300
# A seed's clips start this far into the scene's timeline, so traffic is already flowing.
TIME_OFFSET_S = 600.0

Picture = Callable[[float], np.ndarray]


@dataclass(frozen=True)
class Clip:
    """One labelled clip: `label` is the expected problem code, or "clean"."""

    name: str
    path: Path
    reference: Path
    label: str
    strength: str | None  # "mild" or "clear" for defects
    case: str | None  # the hard negative's name for clean clips that are one
    fps: int
    onset_s: float | None = None  # when a mid-clip defect starts
    seed: int = 0
    kind: str = "street"


@dataclass(frozen=True)
class _Plan:
    name: str
    label: str
    strength: str | None
    case: str | None
    kind: str
    fps: int
    picture: Picture
    reference: tuple[str, float, bool]  # (kind, light, ir) of the stored reference view
    onset_s: float | None = None


# --- encoding --------------------------------------------------------------------------


def encode(
    path: Path,
    frames: Iterator[np.ndarray],
    *,
    fps: int,
    gop: int,
    width: int,
    height: int,
    kbps: int | None = None,
) -> Path:
    """Encode RGB frames to H.264 in .mp4 (atomically: a half-written file is never left).

    `kbps` defaults to 1000 at 640x360, scaled by the pixel count.
    """
    partial = path.with_name(path.name + ".part")
    if kbps is None:
        kbps = _scaled(KBPS_640x360, width, height)
    params = (
        f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:"
        f"bitrate={kbps}:vbv-maxrate={kbps * 3 // 2}:vbv-bufsize={kbps * 2}"
    )
    with av.open(str(partial), mode="w", format="mp4") as container:
        stream = container.add_stream(
            "libx264",
            rate=fps,
            options={"preset": PRESET, "x264-params": params, "threads": "1"},
        )
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.time_base = Fraction(1, fps)
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(partial, path)
    return path


def _scaled(kbps: int, width: int, height: int) -> int:
    return max(50, round(kbps * width * height / (640 * 360)))


def write_png(path: Path, rgb: np.ndarray) -> None:
    partial = path.with_name(path.name + ".part.png")
    if not cv2.imwrite(str(partial), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {partial}")
    os.replace(partial, path)


class _Scenes:
    """Scenes built once per (kind, seed) while a corpus is made: building costs ~0.2 s."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._scenes: dict[tuple[str, int], Scene] = {}

    def get(self, kind: str, seed: int) -> Scene:
        key = (kind, seed)
        if key not in self._scenes:
            self._scenes[key] = Scene(kind, seed, self.width, self.height)
        return self._scenes[key]


def _reference(
    directory: Path, scenes: _Scenes, seed: int, kind: str, light: float, ir: bool
) -> Path:
    tag = "ir" if ir else ("day" if light >= 0.5 else "night")
    path = directory / f"s{seed}-{kind}-reference-{tag}-{scenes.width}x{scenes.height}.png"
    if not path.exists():
        scene = scenes.get(kind, seed)
        write_png(path, scene.render(0.0, light=light, ir=ir, moving=0))
    return path


# --- what each clip shows --------------------------------------------------------------


def _plans(seed: int, scenes: _Scenes, fps: int, seconds: float) -> list[_Plan]:
    rng = np.random.default_rng([seed, 404])
    rotation = [ROTATION[(seed + i) % len(ROTATION)] for i in range(len(ROTATION))]
    counter = iter(range(1_000_000))
    t0 = TIME_OFFSET_S + 37.0 * seed

    def next_kind() -> str:
        return rotation[next(counter) % len(rotation)]

    def day() -> float:
        return float(rng.uniform(*DAY_LIGHT))

    plans: list[_Plan] = []
    for kind in ROTATION:
        scene, light = scenes.get(kind, seed), day()
        plans.append(
            _Plan(
                f"{kind}-clean",
                "clean",
                None,
                None,
                kind,
                fps,
                _live(scene, t0, light),
                (kind, 1.0, False),
            )
        )

    for name in DEFECTS:
        for strength in ("mild", "clear"):
            kind = next_kind()
            scene, light = scenes.get(kind, seed), day()
            options = VARIANTS.get(name)
            variant = options[int(rng.integers(len(options)))] if options else None
            spoil = defect(name, variant)
            amount = STRENGTHS[strength][name]
            clip_key = len(plans)

            def picture(
                t: float,
                scene: Scene = scene,
                light: float = light,
                spoil: Callable[..., np.ndarray] = spoil,
                amount: float = amount,
                clip_key: int = clip_key,
            ) -> np.ndarray:
                frame_rng = np.random.default_rng([seed, clip_key, round(t * 1000)])
                return spoil(scene.render(t0 + t, light=light), amount, frame_rng)

            plans.append(
                _Plan(
                    f"{kind}-{name}-{strength}",
                    name,
                    strength,
                    None,
                    kind,
                    fps,
                    picture,
                    (kind, 1.0, False),
                )
            )

    kind = next_kind()
    scene, light = scenes.get(kind, seed), day()
    held = scene.render(t0 + ONSET_S, light=light)

    def frozen(t: float, scene: Scene = scene, light: float = light) -> np.ndarray:
        return scene.render(t0 + t, light=light) if t < ONSET_S else held

    plans.append(
        _Plan(
            f"{kind}-frozen-clear",
            "frozen",
            "clear",
            None,
            kind,
            fps,
            frozen,
            (kind, 1.0, False),
            ONSET_S,
        )
    )

    for strength, pan in SCENE_CHANGE_PAN.items():
        kind = next_kind()
        scene, light = scenes.get(kind, seed), day()

        def turned(
            t: float, scene: Scene = scene, light: float = light, pan: float = pan
        ) -> np.ndarray:
            return scene.render(t0 + t, light=light, pan=0.0 if t < ONSET_S else pan)

        plans.append(
            _Plan(
                f"{kind}-scene_changed-{strength}",
                "scene_changed",
                strength,
                None,
                kind,
                fps,
                turned,
                (kind, 1.0, False),
                ONSET_S,
            )
        )

    for strength, low in LOW_FPS.items():
        kind = next_kind()
        scene, light = scenes.get(kind, seed), day()
        plans.append(
            _Plan(
                f"{kind}-low_fps-{strength}",
                "low_fps",
                strength,
                None,
                kind,
                low,
                _live(scene, t0, light),
                (kind, 1.0, False),
            )
        )

    plans += _hard_negatives(seed, scenes, fps, seconds, t0, rng)
    return plans


def _live(scene: Scene, t0: float, light: float, **options: float | bool | None) -> Picture:
    def picture(t: float) -> np.ndarray:
        return scene.render(t0 + t, light=light, **options)  # type: ignore[arg-type]

    return picture


def _hard_negatives(
    seed: int, scenes: _Scenes, fps: int, seconds: float, t0: float, rng: np.random.Generator
) -> list[_Plan]:
    def plan(case: str, kind: str, picture: Picture, reference: tuple[str, float, bool]) -> _Plan:
        return _Plan(f"{kind}-clean-{case}", "clean", None, case, kind, fps, picture, reference)

    night_kind = ("shop", "street")[seed % 2]
    traffic_kind = ("street", "parking")[seed % 2]
    ir_kind = ROTATION[seed % len(ROTATION)]
    plans = [
        plan(
            "night_static",
            night_kind,
            _live(scenes.get(night_kind, seed), t0, 0.0, moving=0),
            (night_kind, 0.0, False),
        ),
        plan(
            "ir_night",
            ir_kind,
            _live(scenes.get(ir_kind, seed), t0, 0.0, ir=True, moving=QUIET),
            (ir_kind, 0.0, True),
        ),
        plan(
            "dark_detailed",
            "street",
            _live(scenes.get("street", seed), t0, 0.0, moving=QUIET),
            ("street", 0.0, False),
        ),
        plan(
            "traffic",
            traffic_kind,
            _live(
                scenes.get(traffic_kind, seed),
                t0,
                float(rng.uniform(*DAY_LIGHT)),
                moving=BUSY,
                passing=t0 + seconds / 2 - 1.0,
            ),
            (traffic_kind, 1.0, False),
        ),
    ]
    ramp_kind = ROTATION[(seed + 1) % len(ROTATION)]
    ramp_scene = scenes.get(ramp_kind, seed)
    start, end = (0.95, 0.4) if seed % 2 else (0.4, 0.95)  # dusk or dawn

    def ramp(t: float) -> np.ndarray:
        light = start + (end - start) * min(1.0, t / seconds)
        return ramp_scene.render(t0 + t, light=light)

    plans.append(plan("daylight_ramp", ramp_kind, ramp, (ramp_kind, 1.0, False)))
    settle_kind = ROTATION[(seed + 2) % len(ROTATION)]
    settle_scene, settle_light = scenes.get(settle_kind, seed), float(rng.uniform(*DAY_LIGHT))

    def settling(t: float) -> np.ndarray:
        frame = settle_scene.render(t0 + t, light=settle_light)
        return apply_gain(frame, settling_gain(t, ONSET_S))

    plans.append(plan("exposure_settling", settle_kind, settling, (settle_kind, 1.0, False)))
    plans.append(
        plan(
            "colourful",
            "garden",
            _live(scenes.get("garden", seed), t0, float(rng.uniform(*DAY_LIGHT))),
            ("garden", 1.0, False),
        )
    )
    return plans


# --- public ----------------------------------------------------------------------------


def build_corpus(
    directory: Path,
    seeds: Sequence[int],
    *,
    seconds: float = 12,
    fps: int = 10,
    width: int = 640,
    height: int = 360,
    labels: Sequence[str] | None = None,
    strengths: Sequence[str] | None = None,
) -> list[Clip]:
    """Render and encode the labelled clips for each seed (reusing files already there).

    Per seed: a clean clip of each scene kind, every per-frame defect at mild and clear
    strength, `frozen`, `scene_changed` (mild, clear), `low_fps` (mild, clear) and each
    hard negative (label "clean", `case` its name). `labels` limits which labels are built,
    `strengths` which strengths of the defects (clean clips have none and are always built).
    """
    directory.mkdir(parents=True, exist_ok=True)
    clips: list[Clip] = []
    scenes = _Scenes(width, height)
    tag = f"{width}x{height}-{seconds:g}s"
    for seed in seeds:
        for plan in _plans(seed, scenes, fps, seconds):
            if labels is not None and plan.label not in labels:
                continue
            if strengths is not None and plan.strength not in (None, *strengths):
                continue
            name = f"s{seed}-{plan.name}"
            path = directory / f"{name}-{plan.fps}fps-{tag}.mp4"
            if not path.exists():
                count = max(1, round(seconds * plan.fps))
                frames = (plan.picture(i / plan.fps) for i in range(count))
                encode(path, frames, fps=plan.fps, gop=plan.fps, width=width, height=height)
            ref_kind, ref_light, ref_ir = plan.reference
            reference = _reference(directory, scenes, seed, ref_kind, ref_light, ref_ir)
            clips.append(
                Clip(
                    name,
                    path,
                    reference,
                    plan.label,
                    plan.strength,
                    plan.case,
                    plan.fps,
                    plan.onset_s,
                    seed,
                    plan.kind,
                )
            )
    return clips


@dataclass(frozen=True)
class DaySample:
    """One analysis sample of the 24-hour cycle: time of day, daylight, IR mode, traffic."""

    hour: float
    light: float
    ir: bool
    moving: float


# IR mode switches on below this daylight and off above the higher one (hysteresis, as
# cameras do, so it does not chatter at dusk); the switch itself is abrupt.
IR_ON_BELOW = 0.05
IR_OFF_ABOVE = 0.12
# Mean objects in view by hour of day: quiet nights, rush hours.
TRAFFIC_BY_HOUR = (
    0.2,
    0.1,
    0.1,
    0.1,
    0.2,
    0.5,
    1.5,
    3.5,
    4.5,
    3.0,
    2.5,
    2.5,
    3.0,
    3.0,
    2.5,
    3.0,
    4.0,
    4.5,
    3.5,
    2.5,
    1.5,
    1.0,
    0.6,
    0.3,
)


def _smooth(edge0: float, edge1: float, x: float) -> float:
    u = min(1.0, max(0.0, (x - edge0) / (edge1 - edge0)))
    return u * u * (3.0 - 2.0 * u)


def day_plan(seed: int, samples_per_hour: int = 60) -> list[DaySample]:
    """The clean 24-hour cycle sample by sample (what `day_cycle` renders)."""
    rng = np.random.default_rng([seed, 2424])
    sunrise = float(rng.uniform(6.0, 7.5))
    sunset = float(rng.uniform(18.0, 20.5))
    twilight = 0.7  # hours either side of sunrise/sunset
    # Clouds: a few slow swings of daylight over the day.
    phases = rng.uniform(0, 2 * np.pi, 3)
    samples: list[DaySample] = []
    ir = True
    for index in range(24 * samples_per_hour):
        hour = index / samples_per_hour
        sun = _smooth(sunrise - twilight, sunrise + twilight, hour) * (
            1.0 - _smooth(sunset - twilight, sunset + twilight, hour)
        )
        clouds = 0.85 + 0.15 * float(np.mean(np.sin(hour * np.array([0.7, 1.9, 3.1]) + phases)))
        light = sun * clouds
        if ir and light > IR_OFF_ABOVE:
            ir = False
        elif not ir and light < IR_ON_BELOW:
            ir = True
        h0 = int(hour) % 24
        frac = hour - int(hour)
        moving = TRAFFIC_BY_HOUR[h0] * (1 - frac) + TRAFFIC_BY_HOUR[(h0 + 1) % 24] * frac
        samples.append(DaySample(hour, light, ir, moving))
    return samples


def day_cycle(
    directory: Path,
    seed: int,
    *,
    samples_per_hour: int = 60,
    width: int = 640,
    height: int = 360,
    kind: str = "street",
) -> tuple[Path, Path]:
    """A clean 24-hour day-night cycle as one H.264 file where every frame is a keyframe.

    One frame per analysis sample, 1 fps, so stream second n is sample n (the time of day
    is n / samples_per_hour hours). Returns (clip, daylight reference PNG).
    """
    directory.mkdir(parents=True, exist_ok=True)
    scene = Scene(kind, seed, width, height)
    path = directory / f"s{seed}-{kind}-day_cycle-{samples_per_hour}sph-{width}x{height}.mp4"
    if not path.exists():
        step_s = 3600.0 / samples_per_hour
        plan = day_plan(seed, samples_per_hour)
        frames = (
            scene.render(TIME_OFFSET_S + i * step_s, light=s.light, ir=s.ir, moving=s.moving)
            for i, s in enumerate(plan)
        )
        encode(
            path,
            frames,
            fps=1,
            gop=1,
            width=width,
            height=height,
            kbps=_scaled(KEYFRAME_KBITS_640x360, width, height),
        )
    reference = _reference(directory, _Scenes(width, height), seed, kind, 1.0, False)
    return path, reference
