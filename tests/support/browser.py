"""Debian's chromium, as the browser tests launch it through Playwright."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# How long a page may take to show what a test waits for. Playwright's `expect` waits 5 s by
# default, which a page rendering a large OpenAPI document misses on a loaded 2-core machine.
PATIENCE_MS = 30_000


def patient(page, sync_api):
    """Give both the page's actions and Playwright's assertions the same generous deadline."""
    page.set_default_timeout(PATIENCE_MS)
    sync_api.expect.set_options(timeout=PATIENCE_MS)
    return sync_api.expect
