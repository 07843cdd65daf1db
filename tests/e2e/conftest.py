"""Browser tests: Debian's headless Chromium driven by Playwright's sync API, against
pytest-django's live server (real HTTP, real sessions, CSRF on). No browser download:
Playwright launches /usr/bin/chromium; without it these tests skip."""

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
SCREENSHOTS = OUTPUT / "screenshots"
PASSWORD = "pw-for-tests-1"  # tests/conftest.py make_user


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is not installed"))


@pytest.fixture(scope="module")
def playwright_instance():
    """Playwright's sync API parks an event loop in this thread, so Django would take
    the tests' own (synchronous) ORM calls for calls from async code. Allow them while
    the loop exists, and only then: module scope, so later test modules run with
    Django's async-safety check intact."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as playwright:
            yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance):
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def e2e_settings(settings):
    # The live server speaks plain HTTP: cookies must not require HTTPS here.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False
    return settings


@pytest.fixture
def page(browser, live_server, e2e_settings):
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def api(playwright_instance, live_server):
    """An HTTP client for the agent's side, over the same live server."""
    contexts = []

    def make(plaintext):
        context = playwright_instance.request.new_context(
            base_url=live_server.url,
            extra_http_headers={"Authorization": f"Bearer {plaintext}"},
        )
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.dispose()


@pytest.fixture
def login():
    def do(page, user):
        page.goto("/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")

    return do


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture
def open_as(browser, live_server, e2e_settings):
    contexts = []

    def make(user, size):
        width, height = VIEWPORTS[size]
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        return page

    yield make
    for context in contexts:
        context.close()


def on_screen(page, locator) -> bool:
    """Visible and horizontally inside the viewport (no sideways scrolling needed)."""
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return (
        locator.is_visible()
        and box is not None
        and box["x"] >= 0
        and box["x"] + box["width"] <= width
    )
