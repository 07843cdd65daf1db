from audit.verify import verify_chain
from tests.audit.helpers import append


def test_intact_chain_verifies(workspace):
    append(workspace, 20)
    result = verify_chain(workspace)
    assert result.ok, result
    assert result.entries_checked >= 20
