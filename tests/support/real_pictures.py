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

# name -> (package, path inside its prefix)
FILES: dict[str, tuple[Package, str]] = {
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


def real_pictures() -> Path:
    """The folder holding every file of FILES (fetched and unpacked on first use)."""
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test workers fetch once, not four times
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
