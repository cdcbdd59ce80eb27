"""The dashboard's vendored front-end files: pinned, hashed, re-fetchable from npm.

The pages need no Node step and no CDN: the few files they use are committed under
``web/dashboard/static/vendor/<package>-<version>/`` with their licence, and axe-core (for
the browser tests only) under ``tests/browser/vendor/``. This module is their manifest:

    python -m web.dashboard.vendor_assets --check    # files on disk match the pins
    python -m web.dashboard.vendor_assets --fetch    # re-download from the npm registry

``--fetch`` runs ``npm pack`` for each pinned version, checks the tarball against the
registry's published integrity (sha512) and each file against the sha256 below, and only
then writes it. To upgrade a package, change its version, run ``--fetch --update-hashes``
and review the diff.

Why these: htmx (51 kB, 0BSD) swaps server-rendered fragments, so no rule lives in
JavaScript; uPlot (51 kB, MIT) draws 90 days x several series in a few milliseconds on a
canvas, where Chart.js (~200 kB) or Plot (~300 kB with d3) cost several times the bytes
for charts this plain.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str
    #: The npm registry's ``dist.integrity`` of the tarball.
    integrity: str
    #: Path inside the package -> sha256 of the file.
    files: dict[str, str]
    #: Where the files go, relative to the repository.
    folder: str

    @property
    def destination(self) -> Path:
        return ROOT / self.folder / f"{self.name}-{self.version}"


PACKAGES = (
    Package(
        name="htmx.org",
        version="2.0.10",
        licence="0BSD",
        integrity="sha512-kdeJe7ZVwaS6QMz/ebBIVtZdpwen6L0OQ5GOhPV9MKBb196TCZeZu4yA7ZIQsaLKv7Ep"
        "Xz+So7KSXNuHXhj7Cw==",
        files={
            "dist/htmx.min.js": "71ea67185bfa8c98c39d31717c6fce5d852370fcdfd129db4543774d3145c0de",
            "LICENSE": "d3d2456f76414f2456104660ebd65aff1c04cd7966b942bdabd63f3cdb316a38",
        },
        folder="web/dashboard/static/vendor",
    ),
    Package(
        name="uplot",
        version="1.6.32",
        licence="MIT",
        integrity="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuG"
        "GzQm/ep3tOkyTxpiQIw==",
        files={
            "dist/uPlot.iife.min.js": (
                "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f"
            ),
            "dist/uPlot.min.css": (
                "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04"
            ),
            "LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
        },
        folder="web/dashboard/static/vendor",
    ),
    Package(
        name="axe-core",
        version="4.14.1",
        licence="MPL-2.0",
        integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNN"
        "tuFooJpZe37OgudVGtQ==",
        files={
            "axe.min.js": "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c",
            "LICENSE": "af175b9d96ee93c21a036152e1b905b0b95304d4ae8c2c921c7609100ba8df7e",
        },
        folder="tests/browser/vendor",
    ),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check() -> list[str]:
    """Problems with the files on disk (empty: every pinned file is there and unchanged)."""
    problems = []
    for package in PACKAGES:
        for name, digest in package.files.items():
            path = package.destination / Path(name).name
            if not path.is_file():
                problems.append(f"missing {path.relative_to(ROOT)}")
            elif sha256(path) != digest:
                problems.append(f"changed {path.relative_to(ROOT)} (sha256 {sha256(path)})")
    return problems


def fetch(*, update_hashes: bool = False) -> None:
    """Download every pinned package with ``npm pack`` and write its files."""
    with tempfile.TemporaryDirectory() as scratch:
        for package in PACKAGES:
            tarball = _pack(package, Path(scratch))
            _check_integrity(package, tarball)
            _extract(package, tarball, update_hashes=update_hashes)


def _pack(package: Package, scratch: Path) -> Path:
    spec = f"{package.name}@{package.version}"
    done = subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(scratch)],
        capture_output=True,
        text=True,
        check=True,
    )
    return scratch / done.stdout.strip().splitlines()[-1]


def _check_integrity(package: Package, tarball: Path) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{package.name}@{package.version}: the tarball's integrity differs")


def _extract(package: Package, tarball: Path, *, update_hashes: bool) -> None:
    destination = package.destination
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        for name, digest in package.files.items():
            member = archive.extractfile(f"package/{name}")
            data = member.read() if member else b""
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest and not update_hashes:
                raise SystemExit(f"{package.name}/{name}: sha256 {actual}, pinned {digest}")
            (destination / Path(name).name).write_bytes(data)
            print(f"{package.name}@{package.version} {name} sha256 {actual}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", action="store_true", help="verify the files on disk")
    group.add_argument("--fetch", action="store_true", help="re-download from npm")
    parser.add_argument(
        "--update-hashes", action="store_true", help="with --fetch: print new hashes to pin"
    )
    args = parser.parse_args(argv)
    if args.fetch:
        fetch(update_hashes=args.update_hashes)
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
