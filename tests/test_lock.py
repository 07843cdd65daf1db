"""The locks pin, with hashes, every dependency pyproject.toml names, at a version
pyproject.toml accepts: a dependency added or raised without `make lock` fails here.
Two locks, one resolution: requirements/runtime.txt (what `make run` installs) holds
the runtime dependencies at exactly the pins of requirements/lock.txt (runtime + dev)."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
FULL = "lock.txt"
RUNTIME = "runtime.txt"


def pins(lock: str) -> dict[str, tuple[Version, str]]:
    """name -> (version, the pin's full entry up to the next pin)."""
    text = (ROOT / "requirements" / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    found = {}
    for entry in entries:
        match = PIN.match(entry)
        if match:
            found[canonicalize_name(match[1])] = (Version(match[2]), entry)
    return found


def declared(*, dev: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + (project["optional-dependencies"]["dev"] if dev else [])
    return [Requirement(line) for line in names]


@pytest.mark.parametrize(("lock", "dev"), [(FULL, True), (RUNTIME, False)])
def test_every_declared_dependency_is_pinned_at_an_accepted_version(lock, dev):
    locked = pins(lock)
    for requirement in declared(dev=dev):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements/{lock}: run `make lock`"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} does not satisfy {requirement}: run `make lock`"
        )


@pytest.mark.parametrize(("lock", "dev"), [(FULL, True), (RUNTIME, False)])
def test_every_pin_carries_a_hash(lock, dev):
    locked = pins(lock)
    assert len(locked) > len(declared(dev=dev))  # transitive dependencies are pinned too
    for name, (_, entry) in locked.items():
        assert "--hash=sha256:" in entry, f"{name} has no hash"


def test_the_runtime_lock_is_the_full_locks_resolution_without_the_tool_chain():
    full, runtime = pins(FULL), pins(RUNTIME)
    differing = {
        name: (str(version), str(full[name][0]) if name in full else None)
        for name, (version, _) in runtime.items()
        if name not in full or full[name][0] != version
    }
    assert differing == {}, f"runtime pins differ from the full lock: {differing}; run `make lock`"
    for dev_only in ("pytest", "playwright", "hypothesis", "schemathesis", "mutmut"):
        assert dev_only not in runtime, f"{dev_only} is a test tool, not a runtime dependency"


def test_make_run_installs_only_the_runtime_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^migrate: install-runtime$", makefile, re.M)
    assert re.search(r"^demo: migrate$", makefile, re.M)
    assert re.search(r"^run: demo$", makefile, re.M)
    assert re.search(r"^test: install$", makefile, re.M)
