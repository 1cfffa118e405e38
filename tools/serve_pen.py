"""How closely the studio's output follows the pen: `python tools/bench.py serve --pen 20` draws strokes on the
page's canvas in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) and measures, for
each stroke, the time from releasing the pen to the translated drawing shown (the output <img> loaded), as the page
itself sees it (performance.now() in the page, so driver round trips are not counted). The page waits
DEBOUNCE_MS (studio.js) after the last movement before it sends the drawing: that pause is part of the figure.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,860"]
# the page's clock at the pen's release and at each output update
WATCH_JS = """
window.penUp = 0; window.shownAt = 0;
document.getElementById("canvas").addEventListener("pointerup", () => { window.penUp = performance.now(); });
new MutationObserver(() => { window.shownAt = performance.now(); })
  .observe(document.getElementById("output"), {attributes: true, attributeFilter: ["data-version"]});
"""


def pen_follow(base: str, strokes: int) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory() as profile:
        for flag in [*FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            driver.get(base)
            wait = WebDriverWait(driver, 30)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#net option"))
            driver.execute_script(WATCH_JS)
            canvas = driver.find_element(By.ID, "canvas")
            delays = []
            for i in range(strokes):
                driver.execute_script("window.penUp = 0; window.shownAt = 0;")  # this stroke's times only
                # a zigzag inside the canvas (it is the model's size: 128 px for the CPU preset), a new row each time
                w, h = canvas.size["width"], canvas.size["height"]
                y = round(h * ((i % 7) / 10 - 0.3))
                ActionChains(driver, duration=15).move_to_element_with_offset(canvas, -w // 3, y).click_and_hold() \
                    .move_by_offset(w // 4, h // 8).move_by_offset(w // 4, -h // 8).move_by_offset(w // 6, h // 10) \
                    .release().perform()
                wait.until(lambda d: d.execute_script("return window.penUp > 0 && window.shownAt > window.penUp"))
                delays.append(driver.execute_script("return (window.shownAt - window.penUp) / 1000"))
        finally:
            driver.quit()
    delays.sort()
    return {"strokes": strokes, "pen_up_to_shown_s": {
        "p50": round(statistics.median(delays), 3), "p95": round(delays[int(0.95 * (len(delays) - 1))], 3),
        "max": round(delays[-1], 3)}}
