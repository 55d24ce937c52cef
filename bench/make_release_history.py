"""A git repository whose history is a package's consecutive releases, one commit per release:

    python bench/make_release_history.py pytest /tmp/pytest-history --from 7.0.0 --to 8.3.4

The stand-in for a public repository with a long history when none can be cloned (no internet here
except the package index): each release's sdist (`pip download --no-deps --no-binary :all:`, cached in
--cache) is unpacked and committed over the previous one, dated by the newest file in the sdist. So a
commit is a whole release's worth of changes (hundreds of files), not a developer's commit: commits per
second over it understate what a real history of small commits gives, and "new commit" times are those
of a release-sized change.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

EXACT_VERSION = re.compile(r"^\d+(\.\d+)*$")  # final releases only (no rc, dev, post)


def available_versions(package: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", package], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("Available versions:"))
    versions = [v.strip() for v in line.split(":", 1)[1].split(",")]
    return sorted((v for v in versions if EXACT_VERSION.match(v)), key=version_key)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def sdist(package: str, version: str, cache: Path) -> Path | None:
    """The release's sdist, or None when pip cannot get it (pip prepares an sdist's metadata to download it, and
    some old releases no longer build with today's pip)."""
    found = [p for p in cache.glob(f"{package}-{version}.*") if p.name.endswith((".tar.gz", ".zip"))]
    if not found:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
        if subprocess.run([*pip, f"{package}=={version}", "-d", str(cache)], capture_output=True).returncode != 0:
            return None
        found = [p for p in cache.glob(f"{package}-{version}.*") if p.name.endswith((".tar.gz", ".zip"))]
    return found[0] if found else None


def unpack(archive: Path, into: Path) -> dt.datetime:
    """The archive's single top folder's content into `into`; returns the newest member's time."""
    with tempfile.TemporaryDirectory() as tmp:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
                newest = max(dt.datetime(*info.date_time, tzinfo=dt.UTC) for info in zipped.infolist())
        else:
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and "/" in m.name]
                tar.extractall(tmp, members=members, filter="data")
                newest = dt.datetime.fromtimestamp(max(m.mtime for m in members), dt.UTC)
        (top,) = Path(tmp).iterdir()
        for entry in top.iterdir():
            shutil.move(str(entry), into / entry.name)
    return newest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package")
    parser.add_argument("repo", type=Path, help="the repository to create (must not exist)")
    parser.add_argument("--from", dest="first", required=True, help="first release (inclusive)")
    parser.add_argument("--to", dest="last", required=True, help="last release (inclusive)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "release-sdists")
    args = parser.parse_args()
    if args.repo.exists():
        raise SystemExit(f"{args.repo} exists; give a new path")
    versions = [
        v
        for v in available_versions(args.package)
        if version_key(args.first) <= version_key(v) <= version_key(args.last)
    ]
    args.cache.mkdir(parents=True, exist_ok=True)
    args.repo.mkdir(parents=True)
    git = ["git", "-C", str(args.repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    committed: list[str] = []
    for version in versions:
        archive = sdist(args.package, version, args.cache)
        if archive is None:
            print(f"{version}: skipped (pip could not download its sdist)", flush=True)
            continue
        for entry in args.repo.iterdir():  # the release replaces the previous one (deletions included)
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        when = unpack(archive, args.repo).isoformat()
        env = os.environ | {
            "GIT_AUTHOR_NAME": "release",
            "GIT_AUTHOR_EMAIL": "release@example.com",
            "GIT_COMMITTER_NAME": "release",
            "GIT_COMMITTER_EMAIL": "release@example.com",
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_DATE": when,
        }
        subprocess.run([*git, "add", "-A"], check=True, env=env)
        subprocess.run(
            [*git, "commit", "-q", "--allow-empty", "-m", f"{args.package} {version} (sdist)"], check=True, env=env
        )
        committed.append(version)
        print(f"{version}: {archive.name}", flush=True)
    print(f"{args.repo}: {len(committed)} commits, {args.package} {committed[0]} .. {committed[-1]}")


if __name__ == "__main__":
    main()
