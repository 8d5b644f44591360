"""A person with a real browser on a node's pages: headless Chromium driven over WebDriver
(Selenium), with axe-core (axe-selenium-python) judging accessibility.

    browser_check.py BASE_URL SCREENSHOT_DIR

The browser asks for Kazakh first (its Accept-Language), lands, switches to English with the
language menu, opens the countries resource, searches with the keyboard, and checks what a
first Tab reaches; axe runs on the main pages. Prints one JSON object of what it saw; the Rust
test judges it.
"""

import json
import os
import sys

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              "--window-size=1280,900"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"intl.accept_languages": "kk,ru"})
    opts.binary_location = os.environ.get("ORTAQ_CHROMIUM", "/usr/bin/chromium")
    service = Service(os.environ.get("ORTAQ_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


def main(base, shots):
    os.makedirs(shots, exist_ok=True)
    d = browser()
    wait = WebDriverWait(d, 10)
    seen = {"axe": {}}
    lang = lambda: d.find_element(By.TAG_NAME, "html").get_attribute("lang")
    try:
        d.get(base + "/")
        seen["landing"] = d.current_url[len(base):]
        seen["landing_lang"] = lang()
        seen["landing_h1"] = d.find_element(By.TAG_NAME, "h1").text
        d.save_screenshot(os.path.join(shots, "home-kk.png"))

        d.find_element(By.CSS_SELECTOR, 'a[hreflang="en"]').click()
        wait.until(lambda _: lang() == "en")
        seen["switched_lang"] = lang()
        seen["switched_h1"] = d.find_element(By.TAG_NAME, "h1").text
        d.save_screenshot(os.path.join(shots, "home-en.png"))

        d.get(base + "/ru/nsi")
        d.save_screenshot(os.path.join(shots, "nsi-ru.png"))
        d.find_element(By.CSS_SELECTOR, 'a[href="/ru/nsi/P.CLS.019"]').click()
        wait.until(EC.presence_of_element_located((By.ID, "q")))
        q = d.find_element(By.ID, "q")
        q.send_keys("белар")
        q.send_keys(Keys.ENTER)
        wait.until(lambda _: "1 запись" in d.find_element(By.CSS_SELECTOR, "#items p").text
                   or "Найдена" in d.find_element(By.CSS_SELECTOR, "#items p").text)
        seen["search_found"] = d.find_element(By.CSS_SELECTOR, "#items p").text
        seen["search_codes"] = [c.text for c in d.find_elements(By.CSS_SELECTOR, "#items tbody code")]
        seen["search_url"] = d.current_url[len(base):]
        d.save_screenshot(os.path.join(shots, "resource-search-ru.png"))

        d.get(base + "/kk/")
        d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        first = d.switch_to.active_element
        seen["first_tab"] = {"class": first.get_attribute("class"), "text": first.text}

        for path in ("/ru/", "/kk/nsi", "/en/nsi/P.CLS.019", "/kk/nsi/P.CLS.019?q=a"):
            d.get(base + path)
            axe = Axe(d)
            axe.inject()
            found = axe.run()
            seen["axe"][path] = [
                {"id": v["id"], "impact": v.get("impact"), "nodes": len(v.get("nodes", []))}
                for v in found["violations"]
            ]
    finally:
        d.quit()
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
