"""A person with a real browser on a node's pages: headless Chromium driven over WebDriver
(Selenium), with axe-core (axe-selenium-python) judging accessibility.

    browser_check.py BASE_URL SCREENSHOT_DIR LOGIN PASSWORD

The browser asks for Kazakh first (its Accept-Language), lands, switches to English with the
language menu, opens the countries resource, searches with the keyboard, and checks what a
first Tab reaches; opens a page for people signed in, is sent to the sign-in form, signs in
with the keyboard, reads the account page in Kazakh and signs out; axe runs on the main pages. Prints one JSON object of what it saw; the Rust
test judges it.
"""

import json
import os
import sys

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def browser(downloads=None):
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              "--window-size=1280,900"):
        opts.add_argument(a)
    prefs = {"intl.accept_languages": "kk,ru"}
    if downloads:
        prefs.update({"download.default_directory": downloads, "download.prompt_for_download": False})
    opts.add_experimental_option("prefs", prefs)
    opts.binary_location = os.environ.get("ORTAQ_CHROMIUM", "/usr/bin/chromium")
    service = Service(os.environ.get("ORTAQ_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


def main(base, shots, login, password):
    os.makedirs(shots, exist_ok=True)
    downloads = os.path.join(shots, "..", "downloads-" + str(os.getpid()))
    downloads = os.path.abspath(downloads)
    os.makedirs(downloads, exist_ok=True)
    d = browser(downloads)
    # htmx swaps parts of the page while the script reads them: an element read mid-swap is
    # read again, not a failure.
    wait = WebDriverWait(d, 10, ignored_exceptions=(StaleElementReferenceException,
                                                    NoSuchElementException))
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

        # The registry: searched with the keyboard, narrowed by state, a document opened.
        d.get(base + "/ru/registry")
        q = d.find_element(By.ID, "q")
        q.send_keys("электродвигатели")
        q.send_keys(Keys.ENTER)
        wait.until(lambda _: "q=" in d.current_url)
        seen["registry_found"] = d.find_element(By.ID, "found").text
        Select(d.find_element(By.ID, "country")).select_by_value("BY")
        d.find_element(By.CSS_SELECTOR, "form[role=search] button").click()
        wait.until(lambda _: "country=BY" in d.current_url
                   and len(d.find_elements(By.CSS_SELECTOR, "#documents tbody tr")) == 1)
        seen["registry_by"] = d.find_element(By.CSS_SELECTOR, "#documents tbody td a").text
        d.save_screenshot(os.path.join(shots, "registry-ru.png"))
        d.find_element(By.CSS_SELECTOR, "#documents tbody td a").click()
        wait.until(EC.presence_of_element_located((By.ID, "history")))
        d.find_element(By.CSS_SELECTOR, 'a[hreflang="en"]').click()
        wait.until(lambda _: lang() == "en")
        seen["document_h1"] = d.find_element(By.TAG_NAME, "h1").text
        d.save_screenshot(os.path.join(shots, "registry-document-en.png"))

        # A dataset downloaded from the open-data page.
        d.get(base + "/en/open-data")
        d.save_screenshot(os.path.join(shots, "opendata-en.png"))
        d.find_element(By.CSS_SELECTOR, 'a[href="/open-data/conformity-registry.csv"]').click()
        target = os.path.join(downloads, "conformity-registry.csv")
        wait.until(lambda _: os.path.exists(target) and os.path.getsize(target) > 0)
        with open(target, encoding="utf-8") as f:
            seen["downloaded_lines"] = len(f.read().splitlines())
        d.get(base + "/kk/showcases")
        seen["showcase_charts"] = len(d.find_elements(By.CSS_SELECTOR, "svg.chart"))
        d.save_screenshot(os.path.join(shots, "showcases-kk.png"))

        d.get(base + "/en/account")
        wait.until(EC.presence_of_element_located((By.ID, "login")))
        seen["signin_url"] = d.current_url[len(base):]
        d.save_screenshot(os.path.join(shots, "signin-en.png"))
        d.find_element(By.ID, "login").send_keys(login)
        pw = d.find_element(By.ID, "password")
        pw.send_keys(password)
        pw.send_keys(Keys.ENTER)
        wait.until(lambda _: d.current_url.endswith("/en/account"))
        d.find_element(By.CSS_SELECTOR, 'a[hreflang="kk"]').click()
        wait.until(lambda _: lang() == "kk")
        seen["account_h1"] = d.find_element(By.TAG_NAME, "h1").text
        seen["account_roles"] = [r.text for r in d.find_elements(By.CSS_SELECTOR, "ul.roles li")]
        seen["account_cookie"] = [
            {k: c.get(k) for k in ("name", "httpOnly", "secure", "sameSite")}
            for c in d.get_cookies() if c["name"].endswith("_session")
        ]
        d.save_screenshot(os.path.join(shots, "account-kk.png"))
        axe = Axe(d)
        axe.inject()
        seen["axe"]["/kk/account"] = [
            {"id": v["id"], "impact": v.get("impact"), "nodes": len(v.get("nodes", []))}
            for v in axe.run()["violations"]
        ]
        # The operator's console: the overview with its charts, then a token issued and revoked.
        d.get(base + "/ru/console")
        seen["console_charts"] = len(d.find_elements(By.CSS_SELECTOR, "svg.chart"))
        d.save_screenshot(os.path.join(shots, "console-ru.png"))
        for path in ("/ru/console", "/en/console/tokens", "/kk/console/messages"):
            d.get(base + path)
            axe = Axe(d)
            axe.inject()
            seen["axe"][path] = [
                {"id": v["id"], "impact": v.get("impact"), "nodes": len(v.get("nodes", []))}
                for v in axe.run()["violations"]
            ]
        d.get(base + "/en/console/tokens")
        d.find_element(By.ID, "label").send_keys("browser test")
        d.find_element(By.ID, "days").send_keys("7")
        d.find_element(By.CSS_SELECTOR, "form[action$='/console/tokens'] button").click()
        wait.until(EC.presence_of_element_located((By.ID, "issued-token")))
        seen["issued_token_length"] = len(d.find_element(By.ID, "issued-token").text)
        d.save_screenshot(os.path.join(shots, "console-tokens-en.png"))
        row = [r for r in d.find_elements(By.CSS_SELECTOR, "tbody tr") if "browser test" in r.text][0]
        row_id = row.get_attribute("id")
        row.find_element(By.TAG_NAME, "button").click()
        wait.until(lambda _: "revoked" in d.find_element(By.ID, row_id).text)
        seen["revoked_row"] = d.find_element(By.ID, row_id).find_elements(By.TAG_NAME, "td")[4].text.split(" ·")[0]

        d.get(base + "/kk/account")
        d.find_element(By.CSS_SELECTOR, "form[action$='/signout'] button").click()
        wait.until(lambda _: d.current_url.endswith("/kk/"))
        seen["signed_out_link"] = d.find_element(By.CSS_SELECTOR, ".who a").text

        d.get(base + "/kk/")
        d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        first = d.switch_to.active_element
        seen["first_tab"] = {"class": first.get_attribute("class"), "text": first.text}

        for path in ("/ru/", "/kk/nsi", "/en/nsi/P.CLS.019", "/kk/nsi/P.CLS.019?q=a", "/ru/signin",
                     "/ru/registry", "/en/open-data", "/kk/showcases",
                     "/en/registry/document?id=%D0%95%D0%90%D0%AD%D0%A1%20BY.01.%D0%90%D0%90.0002%2F2026"):
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
    main(*sys.argv[1:5])
