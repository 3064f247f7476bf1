"""Three browser engines behind one small driver, so a scenario is written once and run in
Chromium, Firefox and WebKit (Safari's engine) alike.

- Chromium: Debian's /usr/bin/chromium through playwright (as in conftest.py).
- Firefox: Debian's firefox-esr over WebDriver BiDi, by puppeteer-core from npm
  (tests/browser/node: `npm ci` there; node/firefox.mjs answers one JSON command a line).
- WebKit: Debian's WebKitGTK (webkit2gtk-driver: /usr/bin/WebKitWebDriver and its
  MiniBrowser) through selenium, on an Xvfb display of its own. It reports a Safari user
  agent, service workers and IndexedDB, and no SyncManager, as on an iPhone.

A scenario talks to `Driver`: go to a URL, run a JavaScript expression (a promise is
awaited; a driver's own script channel is not subject to the page's CSP), fill a field,
tap an element by CSS selector, wait until an expression holds, and cut the connection.
Every engine reaches the app through `Cut`, a local TCP proxy in front of it that the test
stops and starts (the page's origin is the proxy): to the browser the server is simply
unreachable, as in a dead zone, and navigator.onLine stays true, as on a phone with a
weak signal. `offline()` switches the network off where the driver can, so the page sees
`offline` and `online`: Chromium's emulation (the service worker obeys it too), and
Firefox's over BiDi with the proxy stopped as well (that emulation leaves the service
worker's own requests on the network); WebKitGTK's WebDriver cannot, so there
`offline()` only stops the proxy.

A missing engine fails its tests with what to install (as conftest.py does for Chromium).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
FIREFOX = Path("/usr/bin/firefox-esr")
WEBKIT_DRIVER = Path("/usr/bin/WebKitWebDriver")
MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
XVFB = Path("/usr/bin/Xvfb")
WIDTH, HEIGHT = 390, 844
ENGINES = ("chromium", "firefox", "webkit")

# GTK's toolbar of MiniBrowser holds its window at least 447 px wide; shrunk to nothing,
# the window (and the page) can be a phone's 390 px.
GTK_CSS = (
    "window > box > *, headerbar, headerbar *, toolbar, toolbar *, entry, button"
    " { min-width: 0; min-height: 0; padding: 0; margin: 0; font-size: 1px; }\n"
)


def missing(engine: str) -> str | None:
    """What this machine lacks to run the engine, in words that say how to get it."""
    if engine == "firefox":
        if not FIREFOX.exists():
            return f"{FIREFOX} is missing: apt-get install firefox-esr"
        if not shutil.which("node"):
            return "node is missing: apt-get install nodejs npm"
        if not (NODE_DIR / "node_modules" / "puppeteer-core").exists():
            return f"puppeteer-core is not installed: run `npm ci` in {NODE_DIR}"
    if engine == "webkit":
        for path, package in ((WEBKIT_DRIVER, "webkit2gtk-driver"), (XVFB, "xvfb")):
            if not path.exists():
                return f"{path} is missing: apt-get install {package}"
        if not MINIBROWSER.exists():
            return f"{MINIBROWSER} is missing: apt-get install webkit2gtk-driver"
    return None


def require(engine: str) -> None:
    """Fail, never skip, when an engine cannot run here."""
    why = missing(engine)
    if why:
        pytest.fail(f"the {engine} tests cannot run: {why}", pytrace=False)


class Cut:
    """A TCP proxy on 127.0.0.1 in front of the app, for engines whose driver cannot
    switch the network off: `down()` drops every open connection and refuses new ones
    (the browser sees a network error, as with no signal), `up()` lets them through."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.is_down = False
        self.closed = False
        threading.Thread(target=self._accept, name="cut-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.is_down:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self.lock:
                self.open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with self.lock:
                    self.open.discard(s)
                with contextlib.suppress(OSError):
                    s.close()

    def down(self) -> None:
        self.is_down = True
        with self.lock:
            sockets, self.open = list(self.open), set()
        for s in sockets:
            _reset(s)

    def up(self) -> None:
        self.is_down = False

    def close(self) -> None:
        self.closed = True
        self.down()
        self.listener.close()


def _reset(s: socket.socket) -> None:
    """Close with a reset, as a dropped connection looks to the browser."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        s.close()


class Driver:
    """One browser page at a phone's size, and what the scenarios do with it."""

    name: str
    cut: Cut  # the proxy in front of the app: the page's origin

    @property
    def origin(self) -> str:
        return self.cut.url

    # Each engine implements these five.
    def goto(self, url: str) -> None:
        raise NotImplementedError

    def js(self, expr: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        raise NotImplementedError

    def fill(self, selector: str, text: str) -> None:
        raise NotImplementedError

    def tap(self, selector: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions since the last call. WebKitGTK's driver
        reports none (W3C WebDriver has no console log), so there a scenario relies on
        what the page shows and does."""
        return []

    def offline(self, on: bool) -> None:
        """No connection (on) or the connection back (off)."""
        if on:
            self.cut.down()
        else:
            self.cut.up()

    # Built on the five.
    def open(self, path: str) -> None:
        self.goto(self.origin + path)

    def wait(self, expr: str, what: str = "", timeout: float = 15, show: str = "") -> object:
        """Wait until the expression is truthy in the page; return its value. Asked again
        every 0.1 s from outside the page (the CSP refuses a polled eval inside it); a
        page still loading counts as not yet. On failure the message has the value of
        show (an expression) too."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                value = self.js(expr)
                if value:
                    return value
                last = value
            except Exception as exc:  # navigating: no document to ask yet
                last = exc
            if time.monotonic() > deadline:
                if show:
                    with contextlib.suppress(Exception):
                        last = f"{last!r}; {show} = {self.js(show)!r}"
                pytest.fail(
                    f"{self.name}: still not true after {timeout} s: {what or expr} "
                    f"(last: {last!r})",
                    pytrace=False,
                )
            time.sleep(0.1)

    def text(self, selector: str) -> str:
        return self.js(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent")

    def count(self, selector: str) -> int:
        return self.js(f"document.querySelectorAll({json.dumps(selector)}).length")


def has_text(selector: str, words: str) -> str:
    """An expression: the element exists and its text contains words."""
    return (
        f"((e) => !!e && e.textContent.replace(/\\s+/g, ' ').includes({json.dumps(words)}))"
        f"(document.querySelector({json.dumps(selector)}))"
    )


def count_is(selector: str, n: int) -> str:
    return f"document.querySelectorAll({json.dumps(selector)}).length === {n}"


class ChromiumDriver(Driver):
    name = "chromium"

    def __init__(self, browser, cut: Cut, options: dict):
        self.cut = cut
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self._errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self._errors.append(m.text))
        self.page.on("pageerror", lambda exc: self._errors.append(f"uncaught: {exc}"))

    def goto(self, url):
        self.page.goto(url)

    def js(self, expr):
        return self.page.evaluate(expr)

    def fill(self, selector, text):
        self.page.fill(selector, text)

    def tap(self, selector):
        self.page.tap(selector)

    def offline(self, on):
        self.context.set_offline(on)

    def errors(self):
        errors, self._errors = self._errors, []
        return errors

    def close(self):
        self.context.close()


class Firefox:
    """firefox-esr by puppeteer-core, through node/firefox.mjs: one browser for the
    session, a fresh browser context (its own cookies, storage and service workers) for
    each test."""

    def __init__(self, profile: Path, log: Path):
        self.log = log
        profile.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                ["node", str(NODE_DIR / "firefox.mjs"), str(FIREFOX), str(profile)],
                cwd=NODE_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.count_id = 0
        self.version = self._answer(0, timeout=60)

    def _answer(self, id_: int, timeout: float):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                raise TimeoutError(f"firefox: no answer in {timeout} s\n{self._log()}")
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"firefox's driver exited\n{self._log()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        answer = json.loads(line)
        assert answer["id"] == id_, answer
        if "error" in answer:
            raise RuntimeError(f"firefox: {answer['error']}")
        return answer["value"]

    def _log(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def call(self, op: str, timeout: float = 30, **args):
        self.count_id += 1
        line = json.dumps({"id": self.count_id, "op": op, **args}) + "\n"
        self.process.stdin.write(line.encode())
        self.process.stdin.flush()
        return self._answer(self.count_id, timeout)

    def close(self):
        with contextlib.suppress(Exception):
            self.call("quit", timeout=10)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.selector.close()
        self.process.stdin.close()
        self.process.stdout.close()


class FirefoxDriver(Driver):
    """A page in a fresh context of the session's Firefox."""

    name = "firefox"

    def __init__(self, firefox: Firefox, cut: Cut):
        self.firefox, self.cut = firefox, cut
        self._call = firefox.call
        self._call("fresh", width=WIDTH, height=HEIGHT)

    def goto(self, url):
        self._call("goto", url=url)

    def js(self, expr):
        return self._call("eval", expr=expr)

    def fill(self, selector, text):
        self._call("fill", selector=selector, text=text)

    def tap(self, selector):
        self._call("click", selector=selector)

    def offline(self, on):
        # Firefox's emulation over BiDi takes the page offline but not its service
        # worker, which would still fetch live pages: the proxy cuts that too.
        if on:
            self._call("offline", on=True)
            self.cut.down()
        else:
            self.cut.up()
            self._call("offline", on=False)

    def errors(self):
        return self._call("errors")

    def close(self):
        self._call("release")


class Display:
    """An Xvfb display of our own (the first free number, as Xvfb reports it)."""

    def __init__(self):
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [
                str(XVFB),
                "-displayfd",
                str(write),
                "-screen",
                "0",
                "1280x1024x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as out:
            number = out.readline().strip()
        if not number:
            self.process.kill()
            pytest.fail("Xvfb did not start", pytrace=False)
        self.name = f":{number}"

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WebKitDriver(Driver):
    """WebKitGTK's MiniBrowser by selenium through WebKitWebDriver."""

    name = "webkit"

    def __init__(self, cut: Cut, display: Display, home: Path, log: Path):
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        self.cut, self.log = cut, log
        (home / "gtk-3.0").mkdir(parents=True, exist_ok=True)
        (home / "gtk-3.0" / "gtk.css").write_text(GTK_CSS)
        options = Options()
        options.binary_location = str(MINIBROWSER)
        options.add_argument("--automation")
        env = {**os.environ, "DISPLAY": display.name, "XDG_CONFIG_HOME": str(home)}
        env.pop("WAYLAND_DISPLAY", None)
        service = Service(str(WEBKIT_DRIVER), log_output=str(log), env=env)
        self.driver = webdriver.WebKitGTK(options=options, service=service)
        self.driver.set_script_timeout(30)
        self.driver.set_page_load_timeout(30)
        # The toolbar takes some height: size the window so the page gets 390x844.
        self.driver.set_window_rect(width=WIDTH, height=HEIGHT)
        chrome = HEIGHT - self.driver.execute_script("return innerHeight")
        self.driver.set_window_rect(width=WIDTH, height=HEIGHT + chrome)

    def goto(self, url):
        self.driver.get(url)

    def js(self, expr):
        return self.driver.execute_script(f"return ({expr});")

    def _element(self, selector: str, act: Callable, timeout: float = 10) -> None:
        """Act on the element once it is there and can be used (as playwright's and
        puppeteer's actions wait)."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By

        deadline = time.monotonic() + timeout
        while True:
            try:
                return act(self.driver.find_element(By.CSS_SELECTOR, selector))
            except WebDriverException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def fill(self, selector, text):
        from selenium.webdriver.common.keys import Keys

        def act(field):
            field.clear()
            if text:
                # WebKitGTK's driver drops a typed "\n"; Enter is what a person presses.
                field.send_keys(text.replace("\n", Keys.ENTER))

        self._element(selector, act)

    def tap(self, selector):
        def act(element):
            # WebKitGTK's own scrolling before a click leaves an element low on the page
            # under the fixed tab bar; a person scrolls it into sight first.
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            element.click()

        self._element(selector, act)

    def close(self):
        with contextlib.suppress(Exception):
            self.driver.quit()


Factory = Callable[[], Driver]
