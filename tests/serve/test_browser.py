"""The studio page in a real headless Chromium: draw with pointer actions, see the translation appear and follow the
drawing, upload a file and get its before/after result. Skipped without a browser, except on CI, where a missing
browser is a failure (.ci/run installs Debian's chromium and chromium-driver)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import make_cyclegan_export

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,860"]
# With STUDIO_EXPORT set, the screenshot of the drawn bag replaces docs/studio.png.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "studio.png"
# [distinct colours, a checksum] of an <img>'s pixels, read through a canvas (blob: URLs are same-origin).
PIXELS_JS = """
const img = arguments[0], c = document.createElement("canvas");
c.width = img.naturalWidth; c.height = img.naturalHeight;
const ctx = c.getContext("2d"); ctx.drawImage(img, 0, 0);
const data = ctx.getImageData(0, 0, c.width, c.height).data, colours = new Set();
let sum = 0;
for (let i = 0; i < data.length; i += 4) {
  const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
  colours.add(rgb);
  sum = (sum * 31 + rgb) % 1000000007;
}
return [colours.size, sum];
"""


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def stroke(driver, canvas, points) -> None:
    """Press at the first point (offsets from the canvas centre), drag through the others, release."""
    actions = ActionChains(driver, duration=20).move_to_element_with_offset(canvas, *points[0]).click_and_hold()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        actions.move_by_offset(x1 - x0, y1 - y0)
    actions.release().perform()


# A bag: body, rounded bottom, handle (offsets from the canvas centre, in screen pixels of a 512 px canvas).
BAG = [[(-190, -60), (190, -60), (215, 150), (190, 200), (-190, 200), (-215, 150), (-190, -60)],
       [(-110, -60), (-105, -150), (-60, -215), (0, -230), (60, -215), (105, -150), (110, -60)],
       [(-80, -60), (-75, -140), (-40, -190), (0, -200), (40, -190), (75, -140), (80, -60)]]


def test_draw_and_upload_in_a_real_browser(browser, make_app, live_server, tmp_path):
    """With STUDIO_EXPORT=EXPORT (a trained sketch -> handbag model) the drawing is of a bag, for docs/studio.png."""
    trained = os.environ.get("STUDIO_EXPORT")
    export = Path(trained) if trained else make_cyclegan_export(tmp_path / "tiny" / "cyclegan")  # untrained
    app, worker = make_app(exports=[export])
    _, url = live_server(app)
    browser.get(url)
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#net option"))
    model = "pix2pix" if trained else "cyclegan"
    assert model in browser.find_element(By.ID, "card").text and export.parent.name in browser.page_source
    canvas, output = browser.find_element(By.ID, "canvas"), browser.find_element(By.ID, "output")
    size = browser.execute_script("return [arguments[0].width, arguments[0].getBoundingClientRect().width]", canvas)
    model_size = worker.description["preprocess"]["crop_size"]
    assert size[0] == model_size and size[1] >= 512  # the model's pixels, drawn on at a size a hand can use

    def version() -> int:
        return int(output.get_attribute("data-version"))

    for points in BAG:
        stroke(browser, canvas, points)
    wait.until(lambda d: version() >= 1)
    colours, first = browser.execute_script(PIXELS_JS, output)
    assert colours > 1, "the translation is blank"
    natural = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", output)
    assert natural == [model_size, model_size]
    if trained:  # the screenshot shows the bag, not the test's scribbles below
        time.sleep(1)  # the last stroke's translation, after the page's debounce
        wait.until(lambda d: d.execute_script("return arguments[0].complete", output))
        browser.save_screenshot(str(tmp_path / "studio.png"))
        shutil.copyfile(tmp_path / "studio.png", SCREENSHOT)
        return
    drawn = version()
    browser.find_element(By.ID, "width").send_keys("\ue014" * 10)  # ArrowRight: a wider pen
    stroke(browser, canvas, [(-100, 0), (0, 100), (100, 0), (0, -100), (-100, 0)])
    wait.until(lambda d: version() > drawn and browser.execute_script(PIXELS_JS, output)[1] != first)

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(photo)
    browser.find_element(By.ID, "files").send_keys(str(photo))
    after = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".result img.after")
                       if d.execute_script("const i = document.querySelector('.result img.after');"
                                           "return !!i && i.complete && i.naturalWidth > 0") else False)
    assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", after) == [120, 90]
    link = browser.find_element(By.CSS_SELECTOR, ".result a[download]")
    assert link.get_attribute("download") == "photo_G_AB.png" and link.get_attribute("href").startswith("blob:")
    assert not browser.find_elements(By.CSS_SELECTOR, ".result .message.error")


