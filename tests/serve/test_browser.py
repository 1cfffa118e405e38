"""The studio page in a real headless Chromium: draw with pointer actions, see the translation appear and follow the
drawing, upload a file and get its before/after result, paint colour hints for a model that reads them. Skipped
without a browser, except on CI, where a missing browser is a failure (.ci/run installs Debian's chromium and
chromium-driver).

With STUDIO_HINT_EXPORT=EXPORT (a trained sketch -> handbag model with colour hints) a drawn bag given a red hint
must come out red, and given a blue one blue; STUDIO_SCREENSHOT=PATH saves the page with the red bag there."""

from __future__ import annotations

import base64
import io
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

from tests.helpers import HINTED, make_cyclegan_export, make_pix2pix_export

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
    assert not browser.find_element(By.ID, "hint-pen").is_displayed()  # this model reads no colour hints
    canvas, output = browser.find_element(By.ID, "canvas"), browser.find_element(By.ID, "output")
    size = browser.execute_script("return [arguments[0].width, arguments[0].getBoundingClientRect().width]", canvas)
    model_size = worker.description["preprocess"]["crop_size"]
    assert size[0] == model_size and size[1] >= 512  # the model's pixels, drawn on at a size a hand can use

    def version() -> int:
        return int(output.get_attribute("data-version"))

    browser.execute_script(RECORD_JS)  # so that the wait below knows when the last drawing's answer is in
    for points in BAG:
        stroke(browser, canvas, points)
    # the answer to the whole drawing: on a loaded machine the page's debounce can send a first, still blank canvas
    translated(browser, output, 0)
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




# Records what the page sends: each translate request's hint map (a File, or null) and how many are in flight, a
# request counting until its answer has been read.
RECORD_JS = """
window.sentHints = []; window.pending = 0;
const original = window.fetch.bind(window);
window.fetch = async (url, options = {}) => {
  if (options.body instanceof FormData) window.sentHints.push(options.body.get("hints"));
  window.pending += 1;
  try {
    const response = await original(url, options);
    await response.clone().blob();
    return response;
  } finally {
    window.pending -= 1;
  }
};
"""
# The last request's hint map as base64 PNG, or null when it had none.
LAST_HINTS_JS = """
const done = arguments[arguments.length - 1], file = window.sentHints.at(-1);
if (!file) return done(null);
const reader = new FileReader();
reader.onload = () => done(reader.result.split(",")[1]);
reader.readAsDataURL(file);
"""
# An <img>'s pixels as base64 PNG, read through a canvas.
IMAGE_PNG_JS = """
const img = arguments[0], c = document.createElement("canvas");
c.width = img.naturalWidth; c.height = img.naturalHeight;
c.getContext("2d").drawImage(img, 0, 0);
return c.toDataURL("image/png").split(",")[1];
"""


def translated(driver, output, version: int) -> int:
    """Wait until the page shows the answer to what is drawn now (its output past `version`, no request in flight
    and none started for a while: the page sends 300 ms after the last change); the output's new version."""
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: int(output.get_attribute("data-version")) > version)
    state = "return [Number(arguments[0].dataset.version), window.sentHints.length, window.pending]"
    while True:
        wait.until(lambda d: d.execute_script("return window.pending === 0 && arguments[0].complete", output))
        before = driver.execute_script(state, output)
        time.sleep(0.6)
        if driver.execute_script(state, output) == before:
            return before[0]


def picture(data: str | None) -> Image.Image | None:
    return Image.open(io.BytesIO(base64.b64decode(data))) if data else None


def set_colour(driver, element_id: str, colour: str) -> None:
    """What picking a colour in the browser's dialog does to an <input type=color>."""
    driver.execute_script("const input = document.getElementById(arguments[0]); input.value = arguments[1];"
                          "input.dispatchEvent(new Event('input', {bubbles: true}));", element_id, colour)


def open_studio(browser, make_app, live_server, export: Path):
    """The page over `export`, recording its requests; (canvas, output) once the models are listed."""
    app, _ = make_app(exports=[export])
    _, url = live_server(app)
    browser.get(url)
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#net option"))
    browser.execute_script(RECORD_JS)
    return browser.find_element(By.ID, "canvas"), browser.find_element(By.ID, "output")


# Hint dots inside BAG's body (single clicks: dots about as large as the colour patches of training).
HINT_DOTS = [(-110, 20), (0, 20), (110, 20), (-60, 80), (60, 80), (-110, 140), (0, 140), (110, 140)]


def test_the_colour_pen_paints_hints_beside_the_drawing(browser, make_app, live_server, tmp_path):
    """An untrained hinted model: the hints go as their own sketch-sized RGBA map, change the output, and clearing
    them gives back the output of the drawing alone; "New colour" recolours them at random and translates."""
    export = make_pix2pix_export(tmp_path / "tiny" / "bags", 0, *HINTED, "data.load_size=72",
                                 "data.crop_size=64")
    canvas, output = open_studio(browser, make_app, live_server, export)
    assert browser.find_element(By.ID, "hint-pen").is_displayed() and "colour hints" in browser.find_element(
        By.ID, "card").text
    for points in BAG:
        stroke(browser, canvas, points)
    version = translated(browser, output, 0)
    _, drawing_alone = browser.execute_script(PIXELS_JS, output)
    assert picture(browser.execute_async_script(LAST_HINTS_JS)) is None  # no hint painted: no map sent

    browser.find_element(By.ID, "hint-pen").click()
    stroke(browser, canvas, [(-120, 60), (120, 60), (120, 120), (-120, 120)])
    version = translated(browser, output, version)
    hints = picture(browser.execute_async_script(LAST_HINTS_JS))
    assert (hints.format, hints.mode, hints.size) == ("PNG", "RGBA", (64, 64))  # the sketch's own size
    rgba = np.asarray(hints)
    opaque = rgba[:, :, 3] == 255
    assert 20 < opaque.sum() < 64 * 64 / 4 and {tuple(c) for c in rgba[opaque][:, :3]} == {(0xC6, 0x28, 0x28)}
    assert not rgba[:8, :, 3].any(), "the sketch's strokes leaked into the hint map"  # the handle's top is up there
    _, hinted = browser.execute_script(PIXELS_JS, output)
    assert hinted != drawing_alone

    browser.find_element(By.ID, "clear-hints").click()
    version = translated(browser, output, version)
    assert browser.execute_script(PIXELS_JS, output)[1] == drawing_alone  # the same drawing without hints
    assert picture(browser.execute_async_script(LAST_HINTS_JS)) is None

    browser.find_element(By.ID, "new-colour").click()  # no hints left: one at the centre, in a random colour
    translated(browser, output, version)
    colour = browser.find_element(By.ID, "hint-color").get_attribute("value")
    rgba = np.asarray(picture(browser.execute_async_script(LAST_HINTS_JS)))
    assert rgba[32, 32, 3] == 255 and "#%02x%02x%02x" % tuple(rgba[32, 32, :3]) == colour
    assert browser.execute_script(PIXELS_JS, output)[1] != drawing_alone


def mean_hue(image: Image.Image) -> float:
    """The saturation-weighted circular mean hue, in degrees, of the pixels that are not near white (the bag)."""
    rgb = np.asarray(image.convert("RGB")).astype(int)
    hsv = np.asarray(image.convert("RGB").convert("HSV")).astype(float)
    bag = rgb.min(axis=2) < 225
    angles, weights = hsv[:, :, 0][bag] / 256 * 2 * np.pi, hsv[:, :, 1][bag]
    return float(np.degrees(np.arctan2((weights * np.sin(angles)).sum(), (weights * np.cos(angles)).sum())) % 360)


def hue_distance(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.mark.skipif(not os.environ.get("STUDIO_HINT_EXPORT"),
                    reason="set STUDIO_HINT_EXPORT=EXPORT, a trained sketch -> handbag model with colour hints")
def test_a_red_hint_makes_a_red_bag_and_a_blue_one_a_blue_bag(browser, make_app, live_server):
    canvas, output = open_studio(browser, make_app, live_server, Path(os.environ["STUDIO_HINT_EXPORT"]))
    for points in BAG:
        stroke(browser, canvas, points)
    version = translated(browser, output, 0)
    browser.find_element(By.ID, "hint-pen").click()
    hues = {}
    for name, colour, target, tolerance in [("red", "#d01818", 0, 25), ("blue", "#1838d0", 230, 35)]:
        browser.find_element(By.ID, "clear-hints").click()
        set_colour(browser, "hint-color", colour)
        for dot in HINT_DOTS:
            stroke(browser, canvas, [dot])
        version = translated(browser, output, version)
        if name == "red" and os.environ.get("STUDIO_SCREENSHOT"):  # before the check: a failure is worth seeing
            browser.save_screenshot(os.environ["STUDIO_SCREENSHOT"])
        hues[name] = mean_hue(picture(browser.execute_script(IMAGE_PNG_JS, output)))
        assert hue_distance(hues[name], target) < tolerance, f"a {name} hint gave a bag of mean hue {hues[name]:.0f}"
    assert hue_distance(hues["red"], hues["blue"]) > 90
