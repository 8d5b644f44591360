#!/usr/bin/env bash
# Regenerates docs/screenshots/ with headless Chromium: the browser test of the pages writes its
# screenshots there instead of a temporary folder. Needs chromium and chromium-driver (Debian),
# and makes a venv with Selenium and axe-selenium-python under target/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/browser-venv
if ! "$venv/bin/python" -c 'import selenium, axe_selenium_python' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'selenium==4.27.1' 'axe-selenium-python==2.1.6'
fi
mkdir -p docs/screenshots
ORTAQ_BROWSER_PYTHON="$PWD/$venv/bin/python" ORTAQ_REQUIRE_BROWSER=1 \
    ORTAQ_SCREENSHOTS="$PWD/docs/screenshots" \
    cargo test -q -p host --test web a_real_browser
ls docs/screenshots
