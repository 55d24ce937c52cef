"""A git repository whose history is a package's consecutive releases, one commit per release:

    python bench/make_release_history.py pytest /tmp/pytest-history --from 7.0.0 --to 8.3.4
    python bench/make_release_history.py hypothesis /tmp/hypothesis-history     # all 1,596 releases

The stand-in for a public repository with a long history when none can be cloned (no internet here
except the package index): each release's sdist (`pip download --no-deps --no-binary :all:`, cached in
--cache) is unpacked and committed over the previous one, dated by the newest file in the sdist. So a
commit is a whole release's worth of changes, not a developer's commit: commits per second over it
understate what a real history of small commits gives, and "new commit" times are those of a
release-sized change. Hypothesis is the exception that makes a good stand-in: it releases on every merged
pull request, so its ~1,600 releases are nearly its merge history.

Downloads run --jobs at a time (each is a pip process, latency bound); releases pip cannot get are skipped
and counted. --wheels takes a release's wheel where it has one (pip builds an sdist's metadata to download
it, 4.5 s a release against 1.3 s for a wheel, and old sdists may no longer build) and puts its content under
src/, where src-layout sdists keep the same files, so switching between the two is not a mass rename; a
wheel's .dist-info folder is left out. (Hypothesis's history in bench/RESULTS.md is of sdists, without it.)
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
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


def cached(package: str, version: str, cache: Path, wheels: bool) -> Path | None:
    names = [f"{package}-{version}.tar.gz", f"{package}-{version}.zip"]
    found = [cache / name for name in names if (cache / name).exists()]
    if wheels:
        found = sorted(cache.glob(f"{package.replace('-', '_')}-{version}-*.whl")) + found
    return found[0] if found else None


def release_archive(package: str, version: str, cache: Path, wheels: bool) -> tuple[Path | None, str]:
    """The release's wheel (with `wheels`, when it has one) or sdist, or None and pip's last error line when pip
    cannot get it (pip prepares an sdist's metadata to download it, and some old releases no longer build with
    today's pip). A failed download is tried again twice: parallel downloads sometimes fail for a moment."""
    found = cached(package, version, cache, wheels)
    if found is not None:
        return found, ""
    pip = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"]
    pip += ["--ignore-requires-python", "-d", str(cache), f"{package}=={version}"]
    error, absent = "", False
    for kind in [["--only-binary", ":all:"], ["--no-binary", ":all:"]] if wheels else [["--no-binary", ":all:"]]:
        for attempt in range(3):
            done = subprocess.run([*pip, *kind], capture_output=True, text=True)
            if done.returncode == 0:
                return cached(package, version, cache, wheels), ""
            error = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            # pip names the versions it did find; "none" means the index page itself did not come
            absent = "No matching distribution" in error and "(from versions: none)" not in done.stderr
            if absent:
                break  # no archive of this kind: the next kind (an sdist when no wheel), not a retry
            time.sleep(2 * (attempt + 1))
        if not absent:
            break  # a wheel exists but would not download: no sdist instead, so the layout does not flip
    return None, error


def unpack(archive: Path, into: Path) -> dt.datetime:
    """The archive's content into `into` (an sdist's single top folder's content; a wheel's under src/, without
    its .dist-info); returns the newest member's time."""
    with tempfile.TemporaryDirectory() as tmp:
        if archive.name.endswith((".zip", ".whl")):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
                newest = max(dt.datetime(*info.date_time, tzinfo=dt.UTC) for info in zipped.infolist())
        else:
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and "/" in m.name]
                tar.extractall(tmp, members=members, filter="data")
                newest = dt.datetime.fromtimestamp(max(m.mtime for m in members), dt.UTC)
        if archive.name.endswith(".whl"):
            source, into = Path(tmp), into / "src"
            into.mkdir()
            for info in source.glob("*.dist-info"):
                shutil.rmtree(info)
        else:
            (source,) = Path(tmp).iterdir()
        for entry in source.iterdir():
            shutil.move(str(entry), into / entry.name)
    return newest


def archives(
    package: str, versions: list[str], cache: Path, wheels: bool, jobs: int
) -> Iterator[tuple[Path | None, str]]:
    """Each version's archive (or None and why), in order, fetched `jobs` at a time."""
    with ThreadPoolExecutor(jobs) as pool:
        yield from pool.map(lambda version: release_archive(package, version, cache, wheels), versions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package")
    parser.add_argument("repo", type=Path, help="the repository to create (must not exist)")
    parser.add_argument("--from", dest="first", default="0", help="first release (inclusive; default the first)")
    parser.add_argument("--to", dest="last", default=None, help="last release (inclusive; default the last)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "release-sdists")
    parser.add_argument("--wheels", action="store_true", help="a release's wheel where it has one (see above)")
    parser.add_argument("--jobs", type=int, default=6, help="downloads at a time (default 6)")
    args = parser.parse_args()
    if args.repo.exists():
        raise SystemExit(f"{args.repo} exists; give a new path")
    versions = [
        v
        for v in available_versions(args.package)
        if version_key(args.first) <= version_key(v) and (args.last is None or version_key(v) <= version_key(args.last))
    ]
    args.cache.mkdir(parents=True, exist_ok=True)
    args.repo.mkdir(parents=True)
    git = ["git", "-C", str(args.repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    committed: list[str] = []
    skipped: list[str] = []
    for version, (archive, error) in zip(
        versions, archives(args.package, versions, args.cache, args.wheels, args.jobs), strict=True
    ):
        if archive is None:
            print(f"{version}: skipped (pip could not download it: {error})", flush=True)
            skipped.append(version)
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
            [
                *git,
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                f"{args.package} {version} ({'wheel' if archive.name.endswith('.whl') else 'sdist'})",
            ],
            check=True,
            env=env,
        )
        committed.append(version)
        print(f"{version}: {archive.name}", flush=True)
    print(f"{args.repo}: {len(committed)} commits, {args.package} {committed[0]} .. {committed[-1]}")
    print(f"{len(skipped)} of {len(versions)} releases skipped (pip could not download them): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
