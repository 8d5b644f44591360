"""A person of the KZ node signs in to the EEC portal in a real browser (headless Chromium over
WebDriver): the EEC sign-in page offers the KZ node, the browser goes there, the person signs
in with the keyboard on KZ's form, and comes back to the EEC portal signed in.

    browser_signin_across.py EEC_BASE SCREENSHOT_DIR LOGIN PASSWORD

Prints one JSON object of what it saw; the Rust test judges it.
"""

import json
import os
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_check import browser  # noqa: E402


def main(eec, shots, login, password):
    os.makedirs(shots, exist_ok=True)
    d = browser()
    wait = WebDriverWait(d, 15)
    seen = {}
    try:
        d.get(eec + "/ru/signin")
        d.save_screenshot(os.path.join(shots, "signin-across-ru.png"))
        d.find_element(By.CSS_SELECTOR, 'a[href$="/signin/via/KZ"]').click()
        wait.until(EC.presence_of_element_located((By.ID, "login")))
        seen["provider_page"] = d.current_url.split("?")[0]
        seen["provider_lang"] = d.find_element(By.TAG_NAME, "html").get_attribute("lang")
        d.find_element(By.ID, "login").send_keys(login)
        pw = d.find_element(By.ID, "password")
        pw.send_keys(password)
        pw.send_keys(Keys.ENTER)
        try:
            wait.until(lambda _: d.current_url.startswith(eec) and "/account" in d.current_url)
        except Exception:
            raise SystemExit("stuck at %s: %s" % (d.current_url, d.find_element(By.TAG_NAME, "main").text[:300]))
        seen["back_at"] = d.current_url
        seen["login"] = d.find_element(By.CSS_SELECTOR, "dd code").text
        seen["header_name"] = d.find_element(By.CSS_SELECTOR, ".who a").text
        d.save_screenshot(os.path.join(shots, "account-across-ru.png"))
    finally:
        d.quit()
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:5])
