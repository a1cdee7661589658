"""
Upstream test suites, fetched at test time by pinned version and hash, never committed.

The sdist is downloaded with pip (the ordinary client, so the machine's index
settings apply) into a cache outside the repository (``$XDG_CACHE_HOME/cbcontrol``,
else ``~/.cache/cbcontrol``), checked against its pinned SHA-256, and unpacked there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sdist:
    """A published source distribution, pinned."""

    name: str
    version: str
    sha256: str

    @property
    def stem(self) -> str:
        """The archive's top directory."""
        return f"{self.name}-{self.version}"


CIRCUITBREAKER = Sdist(
    "circuitbreaker",
    "2.1.3",
    "1a4baee510f7bea3c91b194dcce7c07805fe96c4423ed5594b75af438531d084",
)


def cache_dir() -> Path:
    """Where downloaded suites live, outside the repository."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cbcontrol" / "upstream"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(sdist: Sdist) -> Path:
    """The unpacked sdist, downloaded and verified on first use."""
    root = cache_dir()
    unpacked = root / sdist.stem
    archive = root / f"{sdist.stem}.tar.gz"
    if unpacked.is_dir() and archive.is_file() and _sha256(archive) == sdist.sha256:
        return unpacked
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(root),
            f"{sdist.name}=={sdist.version}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    digest = _sha256(archive)
    if digest != sdist.sha256:
        archive.unlink()
        msg = f"{archive.name}: sha256 {digest} is not the pinned {sdist.sha256}"
        raise AssertionError(msg)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return unpacked
