"""Every environment variable the settings read has a row in a table of the documentation (the
configuration table or its section's), so an operator never has to read config/ to
learn what can be set."""

import re
from pathlib import Path

from tests.docs import documentation_text

ROOT = Path(__file__).resolve().parent.parent
ENV_READ = re.compile(r'env(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"')


def test_every_environment_variable_is_documented():
    sources = [path.read_text() for path in (ROOT / "config").glob("*.py")]
    read = {name for text in sources for name in ENV_READ.findall(text)}
    assert len(read) > 30  # the pattern still finds the settings
    documented = documentation_text()
    missing = sorted(name for name in read if f"| `{name}` |" not in documented)
    assert missing == []
