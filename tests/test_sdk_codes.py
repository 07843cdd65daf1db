"""The SDK's error codes are the server's: one list, checked here so they cannot drift."""

from warden_sdk.codes import ERROR_CODES

from common.errors import ERROR_STATUS


def test_sdk_error_codes_equal_the_servers():
    assert set(ERROR_CODES) == set(ERROR_STATUS)
    assert ERROR_CODES == ERROR_STATUS
