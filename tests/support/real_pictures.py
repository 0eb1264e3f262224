"""Real photographs and real street video that no code of ours made, from Debian packages.

The diagnosis must hold on pictures our renderer did not make (issue 16). Packages that
every Debian mirror keeps carry such pictures: `opencv-doc` (OpenCV's sample data: a
real surveillance clip of a square, a real clip of a garden through a window, streets,
building fronts, interiors; Apache-2.0 AND BSD-3-Clause per its copyright file),
`plasma-workspace-wallpapers` (KDE's photographs: lakes at low sun, forest, moss, cups;
LGPLv3 per each wallpaper's metadata.json), `lomiri-wallpapers-16.04` (photographs of a
living room, a house front, mountains, low sun; CC-BY-4.0 / CC-BY-SA-4.0 per its
copyright file), `mate-backgrounds` (nature photographs; GPL-2+), `python3-skimage`
(scikit-image's sample photographs: a man with a camera outdoors, a café table, a garage,
a launch pad, a brick wall, grass and gravel; BSD-3-Clause per its copyright file) and
`lomiri-wallpapers-20.04` (a bird on a tree trunk, a sea under a night sky; CC-BY-SA-3.0
per its copyright file). Each is fetched
once by its pinned pool path, checked against its SHA-256 and only the files used here
are unpacked, into a cache shared by every test worker (`CAMREG_REAL_PICTURES`, default
~/.cache/camreg/real-pictures).

Two more are installed like any system package, by demo/install-system-packages.sh, and
their files are read where the package put them: `palapeli-data` (KDE's jigsaw puzzles: a
castle under a cloudy sky, a lit bridge and city at night, a chameleon on a branch, a bee
on a flower, citrus slices on a light box; public domain or GFDL per each puzzle's
.desktop file) and `python3-pywt` (PyWavelets' sample pictures: people on an outdoor
stair, an aerial view of fields; MIT per its copyright file). Each file is checked
against its own SHA-256, since the installed version follows the machine's Debian
release, and copied (an array of grey levels converted to PNG) into the same cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MIRRORS = (
    "http://deb.debian.org/debian",
    "https://snapshot.debian.org/archive/debian/20230601T000000Z",
)


@dataclass(frozen=True)
class Package:
    pool_path: str
    sha256: str
    prefix: str  # where the files used here lie inside the package


OPENCV = Package(
    "pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb",
    "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
    "./usr/share/doc/opencv-doc/examples/data/",
)
WALLPAPERS = Package(
    "pool/main/p/plasma-workspace-wallpapers/plasma-workspace-wallpapers_5.27.5-2_all.deb",
    "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b",
    "./usr/share/wallpapers/",
)

LOMIRI = Package(
    "pool/main/l/lomiri-wallpapers/lomiri-wallpapers-16.04_20.04.0-2_all.deb",
    "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab",
    "./usr/share/backgrounds/",
)
MATE = Package(
    "pool/main/m/mate-backgrounds/mate-backgrounds_1.26.0-1_all.deb",
    "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04",
    "./usr/share/backgrounds/mate/nature/",
)
SKIMAGE = Package(
    "pool/main/s/skimage/python3-skimage_0.19.3-8_all.deb",
    "728d88c3e3440f1f3712de0805dc834d29248ff07e1eec8c0f3da07606f752f9",
    "./usr/lib/python3/dist-packages/skimage/data/",
)
LOMIRI_20 = Package(
    "pool/main/l/lomiri-wallpapers/lomiri-wallpapers-20.04_20.04.0-2_all.deb",
    "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709",
    "./usr/share/backgrounds/",
)
PACKAGES = (OPENCV, WALLPAPERS, LOMIRI, MATE, SKIMAGE, LOMIRI_20)


@dataclass(frozen=True)
class Installed:
    """A Debian package that demo/install-system-packages.sh installs: its files are read
    where it put them, each checked against its SHA-256 in INSTALLED_SHA256."""

    name: str
    prefix: str  # the folder of the files used here


PALAPELI = Installed("palapeli-data", "/usr/share/palapeli/collection/")
PYWT = Installed("python3-pywt", "/usr/lib/python3/dist-packages/pywt/data/")
INSTALLED = (PALAPELI, PYWT)

# name -> (package, path inside its prefix)
FILES: dict[str, tuple[Package | Installed, str]] = {
    **{
        name: (OPENCV, name)
        for name in (
            "vtest.avi",
            "leuvenA.jpg",
            "leuvenB.jpg",
            "building.jpg",
            "home.jpg",
            "aloeL.jpg",
            "rubberwhale1.png",
            "graf1.png",
            "squirrel_cls.jpg",
            "butterfly.jpg",
            "messi5.jpg",
            "stuff.jpg",
            "aero1.jpg",
            "aero3.jpg",
            "fruits.jpg",
            "baboon.jpg",
            "basketball1.png",
            "box_in_scene.png",
            "board.jpg",
            "tree.avi",
            "left01.jpg",
            "left.jpg",
            "chicky_512.png",
            "smarties.png",
            "orange.jpg",
            "licenseplate_motion.jpg",
            "ela_original.jpg",
        )
    },
    **{
        f"{name}.jpg": (WALLPAPERS, f"{name}/contents/images/2560x1600.jpg")
        # the other sizes are symbolic links to this one
        for name in (
            "EveningGlow",
            "Path",
            "OneStandsOut",
            "ColorfulCups",
            "Grey",
            "summer_1am",
            "BytheWater",
            "DarkestHour",
            "FallenLeaf",
        )
    },
    "Volna.jpg": (WALLPAPERS, "Volna/contents/images/5120x2880.jpg"),  # its only size
    **{
        f"{name}.jpg": (LOMIRI, f"{name}.jpg")
        for name in (
            "Wine_by_Jakkub_Mede",
            "friends_by_Aitzol_Berasategi",
            "aitzgorri_by_Aitzol_Berasategi",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "sunset_by_Aitzol_Berasategi",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Dragonfly_by_Bolly",
        )
    },
    **{name: (MATE, name) for name in ("Dune.jpg", "GreenMeadow.jpg")},
    **{
        f"skimage_{name}": (SKIMAGE, name)
        for name in (
            "camera.png",
            "coffee.png",
            "chelsea.png",
            "motorcycle_left.png",
            "rocket.jpg",
            "brick.png",
            "grass.png",
            "gravel.png",
        )
    },
    **{
        name: (LOMIRI_20, name)
        for name in ("Kleiber_by_Lukas_Baubkus.jpg", "Infinite-Sea_by_Aury88.jpg")
    },
    **{
        f"palapeli_{name}.jpg": (PALAPELI, f"{name}.jpg")
        for name in (
            "castle-maintenon",
            "cincinnati-bridge",
            "citrus-fruits",
            "european-honey-bee",
            "panther-chameleon-female",
        )
    },
    # NumPy archives of grey levels ("data"), made PNG pictures in the cache
    **{f"pywt_{name}.png": (PYWT, f"{name}.npz") for name in ("ascent", "aero")},
}
# Of the installed files, by our name: the pictures the fourth held-out part was chosen on.
INSTALLED_SHA256 = {
    "palapeli_castle-maintenon.jpg": (
        "f4a6bf48b97d97715413f9ebd2d8744bd46df0e492bc8326e2513d51084f2612"
    ),
    "palapeli_cincinnati-bridge.jpg": (
        "09772d09318b34a5c5edd58ee86ff462bcd2907006f31cc8e0704310f8e9ab60"
    ),
    "palapeli_citrus-fruits.jpg": (
        "0cbd7154a14789803167c86705130d0358875198231269df168ea26224e70848"
    ),
    "palapeli_european-honey-bee.jpg": (
        "9d54ae706bddd899c91b2b801d9ca4556a5a9a399b4043f9d539df62a8cb7f27"
    ),
    "palapeli_panther-chameleon-female.jpg": (
        "adb9e2834a8a3db40ca3817452b956ada527085e5aa2bd604c465651a3834ae4"
    ),
    "pywt_ascent.png": "a6d56bc8e96571d6124f34cedeba49f1d3599507f6c890ad9ba538544454e8f7",
    "pywt_aero.png": "df862635798bac94226b8928f224da8cef8b0d00492c1fdf48fac6dfaf97a94b",
}


def cache_dir() -> Path:
    configured = os.environ.get("CAMREG_REAL_PICTURES")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "camreg" / "real-pictures"


def _download(package: Package, target: Path) -> None:
    errors = []
    for mirror in MIRRORS:
        url = f"{mirror}/{package.pool_path}"
        try:
            digest = hashlib.sha256()
            partial = target.with_name(target.name + ".part")
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != package.sha256:
                partial.unlink()
                errors.append(f"{url}: SHA-256 {digest.hexdigest()}, expected {package.sha256}")
                continue
            os.replace(partial, target)
            return
        except OSError as exc:
            errors.append(f"{url}: {exc}")
    raise RuntimeError("cannot fetch the real pictures: " + "; ".join(errors))


def _unpack(deb: Path, package: Package, wanted: dict[str, str], into: Path) -> None:
    """Only the wanted members (inside path -> our name), streamed from the package."""
    members = {f"{package.prefix}{inside}": name for name, inside in wanted.items()}
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = members.get(member.name)
                if name is None or not member.isfile():
                    continue
                source = tar.extractfile(member)
                assert source is not None
                partial = into / f"{name}.part"
                with open(partial, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.replace(partial, into / name)
    if proc.returncode != 0:
        raise RuntimeError(f"dpkg-deb could not read {deb}")


def _copy_installed(package: Installed, name: str, inside: str, into: Path) -> None:
    """One file of an installed package into the cache, checked and made a picture."""
    source = Path(package.prefix) / inside
    if not source.is_file():
        raise RuntimeError(
            f"{source} is missing: install the Debian package {package.name}"
            " (bash demo/install-system-packages.sh installs it)"
        )
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != INSTALLED_SHA256[name]:
        raise RuntimeError(
            f"{source} of {package.name} has SHA-256 {digest}, expected {INSTALLED_SHA256[name]}:"
            " not the picture the corpus was made with"
        )
    if source.suffix == ".npz":
        with np.load(source) as archive:
            grey = np.asarray(archive["data"], np.uint8)
        partial = into / f"{name}.part.png"  # OpenCV writes by the name's extension
        if not cv2.imwrite(str(partial), grey):
            raise RuntimeError(f"cannot write {partial}")
    else:
        partial = into / f"{name}.part"
        partial.write_bytes(data)
    os.replace(partial, into / name)


def real_pictures() -> Path:
    """The folder holding every file of FILES (fetched and unpacked on first use)."""
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test workers fetch once, not four times
        for name, (installed, inside) in FILES.items():
            if isinstance(installed, Installed) and not (directory / name).exists():
                _copy_installed(installed, name, inside, directory)
        for package in PACKAGES:
            wanted = {n: inside for n, (p, inside) in FILES.items() if p is package}
            if all((directory / name).exists() for name in wanted):
                continue
            deb = directory / Path(package.pool_path).name
            if not deb.exists():
                _download(package, deb)
            _unpack(deb, package, wanted, directory)
            missing = [name for name in wanted if not (directory / name).exists()]
            if missing:
                raise RuntimeError(f"{deb.name} lacks {missing}")
            deb.unlink()  # ~95 MB each; the few files used are kept
    return directory
