"""
End-to-end tests of the browser page at C{/}: a real C{twistd -n wsecho}
process on 127.0.0.1 and headless Chromium driven through Selenium.

They need the Debian packages C{chromium} and C{chromium-driver}, and skip
only when C{/usr/bin/chromedriver} is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from certificates import escapeEndpointValue, writeSelfSignedCertificate
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from serverprocess import ServerProcess

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Connect directly even when the environment sets a proxy, because every
    # server of these tests listens on 127.0.0.1.
    "--no-proxy-server",
    "--window-size=1280,900",
]

PAGE_TIMEOUT = 15.0

PHONE_WIDTH = 390
PHONE_HEIGHT = 844


def runServer(startServer, portDescription: str) -> Iterator[int]:
    """
    Run a server for one test and yield its port, and fail the test if the
    server died during it.
    """
    server: ServerProcess = startServer("--port", portDescription)
    port = server.waitForPort()
    try:
        yield port
        assert server.process.poll() is None, "twistd wsecho exited during the test"
    finally:
        # pytest shows this output only for a test that failed or errored.
        print(f"twistd wsecho output:\n{server.output}")


def runChromium(profile: Path, *extraFlags: str) -> Iterator[WebDriver]:
    """
    Run headless Chromium with a fresh profile for one test.
    """
    if not CHROMEDRIVER.exists():
        pytest.skip(
            f"{CHROMEDRIVER} is missing: install the Debian packages "
            "chromium and chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extraFlags]:
        options.add_argument(flag)
    # An explicit driver path keeps Selenium Manager, which downloads
    # drivers, from running.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    yield from runChromium(tmp_path / "profile")


@pytest.fixture
def tlsBrowser(tmp_path: Path) -> Iterator[WebDriver]:
    yield from runChromium(tmp_path / "profile", "--ignore-certificate-errors")


@pytest.fixture
def httpPort(startServer) -> Iterator[int]:
    yield from runServer(startServer, "tcp:0:interface=127.0.0.1")


@pytest.fixture
def httpsPort(startServer, tmp_path: Path) -> Iterator[int]:
    keyPath, certificatePath = writeSelfSignedCertificate(tmp_path)
    description = (
        "ssl:0:interface=127.0.0.1"
        f":privateKey={escapeEndpointValue(str(keyPath))}"
        f":certKey={escapeEndpointValue(str(certificatePath))}"
    )
    yield from runServer(startServer, description)


def logEntries(driver: WebDriver) -> list[tuple[str, str]]:
    """
    Read the page's log as (kind, text) pairs, oldest first.
    """
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#log li'),"
        " (entry) => [entry.dataset.kind, entry.querySelector('.text').textContent]);"
    )


def waitForEntry(driver: WebDriver, kind: str, pattern: str) -> str:
    """
    Wait until the log has an entry of C{kind} whose text matches the regular
    expression C{pattern}, and return that text.
    """
    expression = re.compile(pattern)

    def findEntry(driver: WebDriver) -> str | None:
        for entryKind, text in logEntries(driver):
            if entryKind == kind and expression.search(text):
                return text
        return None

    try:
        return WebDriverWait(driver, PAGE_TIMEOUT).until(findEntry)
    except TimeoutException:
        entries = "\n".join(f"  {kind}: {text}" for kind, text in logEntries(driver))
        pytest.fail(
            f"timed out after {PAGE_TIMEOUT:.0f} s waiting for a {kind} entry "
            f"matching {pattern!r}. The page's log contains:\n{entries}"
        )


def connectAndEcho(driver: WebDriver, text: str) -> None:
    """
    Connect the page to the prefilled URL, send C{text} and wait for its echo.
    """
    message = driver.find_element(By.ID, "message")
    assert not message.is_enabled(), "the message field is enabled before connecting"

    driver.find_element(By.ID, "connect").click()
    waitForEntry(driver, "open", "^connected to ")
    WebDriverWait(driver, PAGE_TIMEOUT).until(lambda driver: message.is_enabled())
    assert driver.find_element(By.ID, "state").text == "Connected"

    message.send_keys(text + "\n")
    waitForEntry(driver, "sent", f"^{re.escape(text)}$")
    waitForEntry(driver, "received", f"^You said: {re.escape(text)}$")


def test_echoOverHTTP(browser: WebDriver, httpPort: int) -> None:
    """
    The page served over http: prefills a ws: URL to /ws and shows the echo.
    """
    browser.get(f"http://127.0.0.1:{httpPort}/")

    url = browser.find_element(By.ID, "url").get_attribute("value")
    assert url == f"ws://127.0.0.1:{httpPort}/ws"

    connectAndEcho(browser, "Hello from Chromium")

    times = browser.find_elements(By.CSS_SELECTOR, "#log time")
    assert times
    for timestamp in [time.text for time in times]:
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", timestamp), timestamp


def test_disconnectShowsCloseCode(browser: WebDriver, httpPort: int) -> None:
    """
    Disconnecting from the page logs close code 1000 with its name.
    """
    browser.get(f"http://127.0.0.1:{httpPort}/")
    connectAndEcho(browser, "before closing")

    browser.find_element(By.ID, "disconnect").click()

    waitForEntry(
        browser, "info", r'^closing with code 1000, reason "closed from the page"$'
    )
    text = waitForEntry(browser, "close", r"^code 1000 ")
    assert "(normal closure)" in text
    assert "not clean" not in text
    WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda driver: driver.find_element(By.ID, "state").text == "Disconnected"
    )
    assert not browser.find_element(By.ID, "message").is_enabled()
    assert not browser.find_element(By.ID, "send").is_enabled()


def test_reconnectOpensNewConnection(browser: WebDriver, httpPort: int) -> None:
    """
    Pressing Reconnect closes the old socket and opens a new one.
    """
    browser.get(f"http://127.0.0.1:{httpPort}/")
    connectAndEcho(browser, "first connection")
    connect = browser.find_element(By.ID, "connect")
    assert connect.text == "Reconnect"

    connect.click()

    waitForEntry(browser, "close", r"^code 1000 \(normal closure\)")
    WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda driver: [kind for kind, _ in logEntries(driver)].count("open") == 2
    )
    browser.find_element(By.ID, "message").send_keys("second connection\n")
    waitForEntry(browser, "received", r"^You said: second connection$")
    assert browser.find_element(By.ID, "state").text == "Connected"


def test_failedConnectShowsAbnormalClosure(browser: WebDriver, httpPort: int) -> None:
    """
    A URL whose upgrade request gets a 404 logs an error and close code 1006.
    """
    browser.get(f"http://127.0.0.1:{httpPort}/")
    url = browser.find_element(By.ID, "url")
    url.clear()
    url.send_keys(f"ws://127.0.0.1:{httpPort}/missing")

    browser.find_element(By.ID, "connect").click()

    waitForEntry(browser, "error", "^connection failed")
    text = waitForEntry(browser, "close", r"^code 1006 ")
    assert "(abnormal closure)" in text
    assert browser.find_element(By.ID, "state").text == "Disconnected"
    assert not browser.find_element(By.ID, "message").is_enabled()


def test_binaryShownAsHex(browser: WebDriver, httpPort: int) -> None:
    """
    A binary echo appears as its size and a hex preview.
    """
    browser.get(f"http://127.0.0.1:{httpPort}/")
    connectAndEcho(browser, "first")

    # The page has no control for binary messages, so the test sends one on
    # the page's own socket, whose echo goes to the log.
    browser.execute_script("socket.send(new Uint8Array(20).fill(171));")

    text = waitForEntry(browser, "received", r"^binary, ")
    assert text == "binary, 20 bytes: " + " ".join(["ab"] * 16) + " …"


def test_clearEmptiesLog(browser: WebDriver, httpPort: int) -> None:
    """
    The clear button removes every log entry.
    """
    browser.get(f"http://127.0.0.1:{httpPort}/")
    connectAndEcho(browser, "to be cleared")

    browser.find_element(By.ID, "clear").click()

    assert logEntries(browser) == []


def test_phoneWidthNoHorizontalScroll(
    browser: WebDriver, httpPort: int, tmp_path: Path
) -> None:
    """
    At a phone's width the page lays out without horizontal scrolling.
    """
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": PHONE_WIDTH,
            "height": PHONE_HEIGHT,
            "deviceScaleFactor": 2,
            "mobile": True,
        },
    )
    browser.get(f"http://127.0.0.1:{httpPort}/")
    connectAndEcho(browser, "A long line without spaces: " + "x" * 200)

    screenshot = tmp_path / "phone.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 0

    # Chromium's mobile emulation lays out a page without a viewport meta tag
    # 980 px wide, so this also checks the tag.
    innerWidth = browser.execute_script("return window.innerWidth;")
    assert innerWidth == PHONE_WIDTH
    scrollWidth = browser.execute_script("return document.documentElement.scrollWidth;")
    assert scrollWidth <= innerWidth


def test_echoOverTLS(tlsBrowser: WebDriver, httpsPort: int) -> None:
    """
    The page served over https: prefills a wss: URL and shows the echo.
    """
    tlsBrowser.get(f"https://127.0.0.1:{httpsPort}/")

    url = tlsBrowser.find_element(By.ID, "url").get_attribute("value")
    assert url == f"wss://127.0.0.1:{httpsPort}/ws"

    connectAndEcho(tlsBrowser, "Hello from Chromium")
