"""The labelled corpus on real pictures: photographs and a real surveillance clip.

The rendered corpus (corpus.py) shares the renderer's blind spots: its colours, its light,
its noise. This one starts from pictures no code of ours made (real_pictures.py) and
spoils them with the same defect functions at the same strengths, so a threshold that
only fits our renderer shows here. Every scene is one source picture; the scenes are
split into parts (`RealScene.part`), whole scenes, never clips: thresholds are chosen on
`tune` and reported on the held-out parts, `held_out_3` (scored and its misses studied
once) and `held_out_4` (nothing chosen on it, or looked at before it was first scored).

A photograph becomes a live camera the way a static camera sees a still scene: the same
view each frame with fresh sensor noise and a slow swing of exposure (clouds, the
camera's own exposure control); `vtest.avi` (a square with people walking) and
`tree.avi` (a garden through a window, a hand passing) are real cameras' clips. Per
scene (colour scenes):
- `clean`, with `case` the scene's character (street, colourful, low_sun...);
- every per-frame defect at mild and clear strength, `frozen` (the picture at the onset
  repeated, as a hung encoder sends it), `scene_changed` (the view window turned by
  SCENE_CHANGE_PAN of its width), one `low_fps` clip;
- hard negatives in other light, each with the reference view the camera would have:
  `night_traffic` (dim, high gain noise, lamps, headlights passing; still in colour, so
  its reference is the day view), `infrared` (the near-infrared look: grey, foliage
  bright; a reference of its own, as the agent keeps one per lighting), `rain` (streaks
  falling).
Grey sources (a monochrome or infrared camera) get no colour defect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from demo.scene import DEFECTS, SCENE_CHANGE_PAN, STRENGTHS, VARIANTS, defect
from demo.scene.noise import sensor_noise
from demo.scene.raster import finish
from tests.support.corpus import ONSET_S, Clip, encode, write_png
from tests.support.real_pictures import real_pictures

Part = Literal["tune", "held_out_3", "held_out_4"]
PARTS: tuple[Part, ...] = ("tune", "held_out_3", "held_out_4")
Frame = np.ndarray
Picture = Callable[[float], Frame]


@dataclass(frozen=True)
class RealScene:
    name: str  # the file in real_pictures()
    character: str  # the `case` of its clean clip
    part: Part
    outdoor: bool = True  # gets night, infrared and rain variants
    grey: bool = False  # a monochrome source: no colour defects


# Whole scenes are held out, never clips. leuvenA and leuvenB show the same street, so
# they share a part. Three times the rule table was scored on a held-out part and its
# failures studied; each time those scenes then went to `tune` and new ones, from another
# package and chosen by eye for looking like a camera's view (not by score), became the
# held-out part. The third (`held_out_3`) was scored and its one miss studied, but no
# threshold was chosen on it; the fourth (`held_out_4`, from two packages no scene came
# from before) was chosen by eye and added before anything ran on it.
SCENES: tuple[RealScene, ...] = (
    RealScene("leuvenA.jpg", "street_brick", "tune"),
    RealScene("leuvenB.jpg", "street_brick", "tune"),
    RealScene("building.jpg", "shop_front", "tune"),
    RealScene("aloeL.jpg", "interior", "tune", outdoor=False),
    RealScene("graf1.png", "colourful", "tune"),
    RealScene("squirrel_cls.jpg", "garden", "tune"),
    RealScene("messi5.jpg", "floodlit", "tune"),
    RealScene("aero1.jpg", "overview", "tune"),
    RealScene("fruits.jpg", "colourful", "tune", outdoor=False),
    RealScene("basketball1.png", "monochrome", "tune", outdoor=False, grey=True),
    RealScene("EveningGlow.jpg", "low_sun", "tune"),
    RealScene("Path.jpg", "garden", "tune"),
    RealScene("ColorfulCups.jpg", "colourful", "tune", outdoor=False),
    RealScene("vtest.avi", "street_video", "tune"),
    RealScene("home.jpg", "facade_blue_sky", "tune"),
    RealScene("rubberwhale1.png", "colourful", "tune", outdoor=False),
    RealScene("butterfly.jpg", "garden", "tune"),
    RealScene("stuff.jpg", "interior", "tune", outdoor=False),
    RealScene("aero3.jpg", "overview", "tune"),
    RealScene("baboon.jpg", "colourful", "tune", outdoor=False),
    RealScene("box_in_scene.png", "monochrome", "tune", outdoor=False, grey=True),
    RealScene("board.jpg", "colourful", "tune", outdoor=False),
    RealScene("OneStandsOut.jpg", "green_hedge", "tune"),
    RealScene("Grey.jpg", "monochrome", "tune", grey=True),
    RealScene("summer_1am.jpg", "low_sun", "tune"),
    RealScene("BytheWater.jpg", "low_sun", "tune"),
    RealScene("tree.avi", "garden_video", "tune"),
    RealScene("left01.jpg", "monochrome", "tune", outdoor=False, grey=True),
    RealScene("left.jpg", "interior", "tune", outdoor=False),
    RealScene("chicky_512.png", "interior", "tune", outdoor=False),
    RealScene("smarties.png", "white_background", "tune", outdoor=False),
    RealScene("orange.jpg", "colourful", "tune", outdoor=False),
    RealScene("licenseplate_motion.jpg", "street", "tune"),
    RealScene("ela_original.jpg", "interior_dark", "tune", outdoor=False),
    RealScene("Volna.jpg", "beach", "tune"),
    RealScene("DarkestHour.jpg", "dusk", "tune"),
    RealScene("FallenLeaf.jpg", "garden", "tune"),
    RealScene("Wine_by_Jakkub_Mede.jpg", "interior", "tune", outdoor=False),
    RealScene("friends_by_Aitzol_Berasategi.jpg", "house_front", "tune"),
    RealScene("aitzgorri_by_Aitzol_Berasategi.jpg", "garden", "tune"),
    RealScene("life_by_Aitzol_Berasategi.jpg", "garden", "tune"),
    RealScene("picosdeeuropa_by_Aitzol_Berasategi.jpg", "path", "tune"),
    RealScene("sunset_by_Aitzol_Berasategi.jpg", "low_sun", "tune"),
    RealScene("Picture_0B_by_freespace.jpg", "colourful", "tune", outdoor=False),
    RealScene("Picture_1A_by_freespace.jpg", "colourful", "tune", outdoor=False),
    RealScene("Dragonfly_by_Bolly.jpg", "garden", "tune"),
    RealScene("Dune.jpg", "beach", "tune"),
    RealScene("GreenMeadow.jpg", "green_lawn", "tune"),
    RealScene("skimage_camera.png", "monochrome", "held_out_3", grey=True),
    RealScene("skimage_coffee.png", "interior", "held_out_3", outdoor=False),
    RealScene("skimage_chelsea.png", "interior", "held_out_3", outdoor=False),
    RealScene("skimage_motorcycle_left.png", "interior", "held_out_3", outdoor=False),
    RealScene("skimage_rocket.jpg", "overview", "held_out_3"),
    RealScene("skimage_brick.png", "monochrome", "held_out_3", grey=True),
    RealScene("skimage_grass.png", "monochrome", "held_out_3", grey=True),
    RealScene("skimage_gravel.png", "monochrome", "held_out_3", grey=True),
    RealScene("Kleiber_by_Lukas_Baubkus.jpg", "garden", "held_out_3"),
    RealScene("Infinite-Sea_by_Aury88.jpg", "dusk", "held_out_3"),
    RealScene("palapeli_castle-maintenon.jpg", "building", "held_out_4"),
    RealScene("palapeli_panther-chameleon-female.jpg", "garden", "held_out_4"),
    RealScene("palapeli_european-honey-bee.jpg", "garden", "held_out_4"),
    # A night picture already (a lit bridge and city): its night would be a night's night.
    RealScene("palapeli_cincinnati-bridge.jpg", "night_street", "held_out_4", outdoor=False),
    RealScene("palapeli_citrus-fruits.jpg", "white_background", "held_out_4", outdoor=False),
    RealScene("pywt_ascent.png", "monochrome", "held_out_4", grey=True),
    RealScene("pywt_aero.png", "overview", "held_out_4", grey=True),
)
# The view is this share of the source's width, so a turned camera still has picture.
VIEW_SHARE = 0.6
# A live still scene: sensor noise (grey levels) and a slow exposure swing.
LIVE_NOISE = 1.5
EXPOSURE_SWING = 0.03
EXPOSURE_PERIOD_S = 7.0
# Night: scene light (linear) and the camera's gain noise; lamps and headlights.
NIGHT_LIGHT = 0.012
NIGHT_EXPOSURE = 4.0
NIGHT_NOISE = 4.0
LAMPS = 4
HEADLIGHT_SPEED = 0.12  # picture widths a second


class PhotoSource:
    """One scene's pictures: a photograph, or the frames of a real clip."""

    def __init__(self, path: Path, width: int, height: int, fps: int) -> None:
        self.path = path
        self.width, self.height = width, height
        self.fps = fps
        self._loaded = False
        self.video: list[Frame] | None = None
        self.photo: Frame = np.zeros((1, 1, 3), np.uint8)
        self._views: dict[float, Frame] = {}
        self.rate = 10.0  # a clip's own frame rate

    def _load(self) -> None:
        self._loaded = True
        path = self.path
        if path.suffix == ".avi":
            with av.open(str(path)) as container:
                rate = container.streams.video[0].average_rate
                frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            self.rate = float(rate) if rate else 10.0
            self.video = frames
            self.photo = frames[0]
        else:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise OSError(f"{path}: not a readable picture")
            self.photo = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def view(self, t: float, pan: float = 0.0) -> Frame:
        """The camera's picture at clip time t: a 16:9 window, `pan` of its width right."""
        if not self._loaded:
            self._load()
        if self.video is None and pan in self._views:
            return self._views[pan]  # a photograph's view does not change: made once
        source = self.photo
        if self.video is not None:
            source = self.video[int(t * self.rate) % len(self.video)]
            share = 1.0 if pan == 0.0 else 1.0 / (1.0 + pan)
        else:
            share = VIEW_SHARE
        h, w = source.shape[:2]
        crop_w = int(w * share)
        crop_h = min(h, int(crop_w * self.height / self.width))
        crop_w = int(crop_h * self.width / self.height)
        x = int((w - crop_w) / 2 - crop_w * (1.0 - share) / 2 + pan * crop_w)
        x = min(max(0, x if self.video is None else int(pan * crop_w)), w - crop_w)
        y = (h - crop_h) // 2
        window = source[y : y + crop_h, x : x + crop_w]
        view = cv2.resize(window, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.video is None:
            view.flags.writeable = False  # shared by every frame of the clip
            self._views[pan] = view
        return view


def _noise(frame: Frame, sigma: float, rng: np.random.Generator) -> Frame:
    # The demo camera's noise tables: drawing normals afresh costs 12 ms a frame.
    return finish(sensor_noise(frame.astype(np.float32), sigma, rng))


def _exposure(frame: Frame, t: float, phase: float) -> Frame:
    gain = 1.0 + EXPOSURE_SWING * math.sin(2 * math.pi * t / EXPOSURE_PERIOD_S + phase)
    return np.asarray(np.clip(frame.astype(np.float32) * gain + 0.5, 0, 255), np.uint8)


_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255) ** 2.2).astype(np.float32)
_TO_GAMMA = ((np.arange(1024, dtype=np.float32) / 1023) ** (1 / 2.2) * 255).astype(np.float32)


def _blob(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """A Gaussian spot, built from two 1-D profiles (an outer product: cheap per frame)."""
    ys = np.exp(-(((np.arange(h, dtype=np.float32) - cy) / ry) ** 2) / 2)
    xs = np.exp(-(((np.arange(w, dtype=np.float32) - cx) / rx) ** 2) / 2)
    return np.outer(ys, xs)


def night_view(frame: Frame, t: float, seed: int, rng: np.random.Generator) -> Frame:
    """A colour camera at night: little light, high gain, lamps, headlights passing."""
    linear = _TO_LINEAR[frame] * np.float32(NIGHT_LIGHT)
    h, w = frame.shape[:2]
    layout = np.random.default_rng([seed, 77])
    warm = np.array([1.0, 0.8, 0.5], np.float32)
    for _ in range(LAMPS):
        cx, cy = layout.uniform(0.1, 0.9) * w, layout.uniform(0.1, 0.5) * h
        radius = layout.uniform(0.004, 0.008) * w
        linear += (_blob(h, w, cx, cy, radius, radius) * 2.0)[..., None] * warm
        pool = _blob(h, w, cx, cy + 12 * radius, 8 * radius, 4 * radius)
        linear += (pool * 0.03)[..., None] * warm
    # Headlights: a car passing along the lower part of the picture, its beam ahead.
    cx = ((t * HEADLIGHT_SPEED + layout.uniform()) % 1.4 - 0.2) * w
    cy = layout.uniform(0.65, 0.85) * h
    for dx in (-0.04 * w, 0.04 * w):
        linear += (_blob(h, w, cx + dx, cy, 0.008 * w, 0.008 * w) * 4.0)[..., None]
    linear += (_blob(h, w, cx + 0.15 * w, cy, 0.1 * w, 0.04 * h) * 0.08)[..., None]
    # The camera's auto-exposure lifts the dark scene, and its gain brings noise.
    levels = np.clip(linear * np.float32(NIGHT_EXPOSURE * 1023), 0, 1023).astype(np.int16)
    encoded = _TO_GAMMA[levels]
    grey = encoded.mean(axis=2, keepdims=True)
    encoded = grey + 0.6 * (encoded - grey)  # colour fades at night
    return _noise(np.asarray(np.clip(encoded, 0, 255), np.uint8), NIGHT_NOISE, rng)


def infrared_view(frame: Frame) -> Frame:
    """The near-infrared look: foliage bright, sky dark, no colour."""
    rgb = frame.astype(np.float32)
    green_plants = np.clip(rgb[..., 1] - rgb[..., 0], 0, None)
    grey = 0.6 * rgb[..., 0] + 0.3 * rgb[..., 1] + 0.1 * rgb[..., 2] + 0.8 * green_plants
    grey = np.clip(grey * 0.9, 0, 255)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def _rain(frame: Frame, t: float, seed: int) -> Frame:
    """Streaks of rain falling close to the lens: short bright lines, fresh each frame."""
    h, w = frame.shape[:2]
    streaks = np.zeros((h, w), np.float32)
    rng = np.random.default_rng([seed, 99, round(t * 1000)])
    for _ in range(int(0.0008 * h * w)):
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        length = int(rng.uniform(0.03, 0.08) * h)
        cv2.line(streaks, (x, y), (x + length // 6, y + length), 1.0, 1)
    blurred = cv2.GaussianBlur(streaks, (3, 3), 0)[..., None]
    image = frame.astype(np.float32) * (1 - 0.35 * blurred) + 200 * 0.35 * blurred
    return np.asarray(np.clip(image, 0, 255), np.uint8)


def _grey(frame: Frame) -> Frame:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[..., None], 3, axis=2)


def _turned(live: Callable[[float, float], Frame], pan: float, t: float) -> Frame:
    return live(t, 0.0 if t < ONSET_S else pan)


@dataclass(frozen=True)
class _Plan:
    name: str
    label: str
    strength: str | None
    case: str | None
    fps: int
    picture: Picture
    reference: Picture  # the clean view in the same light
    onset_s: float | None = None


def _plans(scene: RealScene, index: int, source: PhotoSource, fps: int) -> list[_Plan]:
    seed = 5000 + index
    phase = index * 0.7
    rng_pick = np.random.default_rng([seed, 1])

    def look(frame: Frame) -> Frame:
        return _grey(frame) if scene.grey else frame

    def live(t: float, pan: float = 0.0) -> Frame:
        frame = look(_exposure(source.view(t, pan), t, phase))
        return _noise(frame, LIVE_NOISE, np.random.default_rng([seed, round(t * 1000)]))

    def reference(t: float) -> Frame:
        return look(source.view(0.0))

    plans = [_Plan("clean", "clean", None, scene.character, fps, live, reference)]
    for name in DEFECTS:
        if scene.grey and name == "colour_cast":
            continue
        options = VARIANTS.get(name)
        variant = options[int(rng_pick.integers(len(options)))] if options else None
        spoil = defect(name, variant)
        for strength in ("mild", "clear"):
            amount = STRENGTHS[strength][name]

            def spoilt(
                t: float,
                spoil: Callable[..., Frame] = spoil,
                amount: float = amount,
                key: int = list(DEFECTS).index(name),
            ) -> Frame:
                rng = np.random.default_rng([seed, key, round(t * 1000)])
                return spoil(look(_exposure(source.view(t), t, phase)), amount, rng)

            plans.append(_Plan(f"{name}-{strength}", name, strength, None, fps, spoilt, reference))
    held: list[Frame] = []  # the picture at the onset, made when first needed

    def frozen(t: float) -> Frame:
        if t < ONSET_S:
            return live(t)
        if not held:
            held.append(live(ONSET_S))
        return held[0]

    plans.append(
        _Plan(
            "frozen-clear",
            "frozen",
            "clear",
            None,
            fps,
            frozen,
            reference,
            ONSET_S,
        )
    )
    for strength, pan in SCENE_CHANGE_PAN.items():
        plans.append(
            _Plan(
                f"scene_changed-{strength}",
                "scene_changed",
                strength,
                None,
                fps,
                partial(_turned, live, pan),
                reference,
                ONSET_S,
            )
        )
    strength = ("mild", "clear")[index % 2]
    plans.append(
        _Plan(f"low_fps-{strength}", "low_fps", strength, None, (4, 2)[index % 2], live, reference)
    )
    if scene.outdoor and not scene.grey:

        def night(t: float) -> Frame:
            rng = np.random.default_rng([seed, 3, round(t * 1000)])
            return night_view(source.view(t), t, seed, rng)

        def infrared(t: float) -> Frame:
            frame = infrared_view(_exposure(source.view(t), t, phase))
            return _noise(frame, 2.5, np.random.default_rng([seed, 5, round(t * 1000)]))

        def rain(t: float) -> Frame:
            return _rain(live(t), t, seed)

        plans += [
            # A colour camera keeps its colour at night: its reference is the day view,
            # which the rules must not compare a night picture with as if it were day.
            _Plan("clean-night_traffic", "clean", None, "night_traffic", fps, night, reference),
            _Plan(
                "clean-infrared",
                "clean",
                None,
                "infrared",
                fps,
                infrared,
                lambda t: infrared_view(source.view(0.0)),
            ),
            _Plan("clean-rain", "clean", None, "rain", fps, rain, reference),
        ]
    return plans


def scenes_of(part: Part | None) -> list[RealScene]:
    return [s for s in SCENES if part is None or s.part == part]


@dataclass(frozen=True)
class _Job:
    directory: Path
    index: int
    seconds: float
    fps: int
    width: int
    height: int
    labels: tuple[str, ...] | None
    strengths: tuple[str, ...] | None


def _build_scene(job: _Job) -> list[Clip]:
    scene = SCENES[job.index]
    stem = Path(scene.name).stem
    tag = f"{job.width}x{job.height}-{job.seconds:g}s"
    source = PhotoSource(real_pictures() / scene.name, job.width, job.height, job.fps)  # lazy
    clips: list[Clip] = []
    for plan in _plans(scene, job.index, source, job.fps):
        if job.labels is not None and plan.label not in job.labels:
            continue
        if job.strengths is not None and plan.strength not in (None, *job.strengths):
            continue
        name = f"{stem}-{plan.name}"
        path = job.directory / f"{name}-{plan.fps}fps-{tag}.mp4"
        reference = job.directory / f"{name}-reference-{tag}.png"
        if not path.exists() or not reference.exists():
            count = max(1, round(job.seconds * plan.fps))
            frames = (plan.picture(i / plan.fps) for i in range(count))
            encode(path, frames, fps=plan.fps, gop=plan.fps, width=job.width, height=job.height)
            write_png(reference, plan.reference(0.0))
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
                job.index,
                stem,
            )
        )
    return clips


def build_real_corpus(
    directory: Path,
    part: Part | None,
    *,
    seconds: float = 8,
    fps: int = 10,
    width: int = 640,
    height: int = 360,
    labels: Sequence[str] | None = None,
    strengths: Sequence[str] | None = None,
    scenes: Sequence[str] | None = None,
    workers: int = 1,
) -> list[Clip]:
    """Encode the labelled clips of the scenes of `part` (None: both), reusing files there.

    `labels` limits which labels are built, `strengths` which strengths of the defects,
    `scenes` which scenes (by file name); `workers` processes build scenes side by side."""
    directory.mkdir(parents=True, exist_ok=True)
    real_pictures()  # fetched once, before the workers look for it
    jobs = [
        _Job(
            directory,
            index,
            seconds,
            fps,
            width,
            height,
            None if labels is None else tuple(labels),
            None if strengths is None else tuple(strengths),
        )
        for index, scene in enumerate(SCENES)
        if (part is None or scene.part == part) and (scenes is None or scene.name in scenes)
    ]
    if workers <= 1:
        return [clip for job in jobs for clip in _build_scene(job)]
    with ProcessPoolExecutor(workers) as pool:
        return [clip for clips in pool.map(_build_scene, jobs) for clip in clips]
