"""The lock file pins, with hashes, every dependency pyproject.toml names, at a version
pyproject.toml accepts: a dependency added or raised without `make lock` fails here."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins() -> dict[str, tuple[Version, str]]:
    """name -> (version, the pin's full entry up to the next pin)."""
    text = (ROOT / "requirements" / "lock.txt").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    found = {}
    for entry in entries:
        match = PIN.match(entry)
        if match:
            found[canonicalize_name(match[1])] = (Version(match[2]), entry)
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(line) for line in names]


def test_every_declared_dependency_is_pinned_at_an_accepted_version():
    locked = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements/lock.txt: run `make lock`"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} does not satisfy {requirement}: run `make lock`"
        )


def test_every_pin_carries_a_hash():
    locked = pins()
    assert len(locked) > len(declared())  # transitive dependencies are pinned too
    for name, (_, entry) in locked.items():
        assert "--hash=sha256:" in entry, f"{name} has no hash"
