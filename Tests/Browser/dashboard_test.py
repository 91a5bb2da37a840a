#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium (Debian's) driven by Selenium, against the real daemon and the
demo helpdesks (the fake GLPI and the fake iTop of the tests, as separate processes on loopback).

    python3 Tests/Browser/dashboard_test.py --bin .build/debug --shots .build/screenshots [--kind glpi|itop|all]

Each scenario prints one line; any failure prints the page and exits 1. Screenshots of every view at 375 px and
1280 px go to --shots (not committed)."""

import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, traceback, urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

PASSWORD = "Demo-Pass-1"

GLPI_CONFIG = """
helpdesk:
  kind: glpi
  url: {url}
  app_token: demo
  user_token: demo
  poll_interval_seconds: 5
  timezone: UTC
  timeout_seconds: 5
  write_grace_seconds: 1
database:
  path: {db}
http:
  host: 127.0.0.1
  port: {port}
roles: {{ manager_profiles: [Supervisor], technician_profiles: [Technician] }}
contracts:
  - id: acme-2026
    name: ACME support 2026
    entity: 1
    include_subentities: true
    match: {{ groups: [1], categories: [1, 2] }}
    priority: 10
    quota_hours: 20
    period: monthly
    starts: 2026-01-01
    timezone: Europe/Paris
    rounding: {{ increment_minutes: 15, mode: up }}
    carry_over: {{ max_hours: 10, expires_after_periods: 1 }}
  - id: beta-2026
    name: Customer B block
    entity: 2
    quota_hours: 10
    period: monthly
    starts: 2026-01-01
  - id: gamma-payg
    name: Gamma pay as you go
    entity: 4
    starts: 2026-01-01
    billing: payg
    rate: 9500
    approval: required
    customers_see_money: true
"""

ITOP_CONFIG = """
helpdesk:
  kind: itop
  url: {url}
  username: hours-daemon
  password: Daemon-Passw0rd!
  timezone: Europe/Paris
  poll_interval_seconds: 5
  timeout_seconds: 5
  write_grace_seconds: 1
database:
  path: {db}
http:
  host: 127.0.0.1
  port: {port}
contracts:
  - id: globex
    name: Globex workplace support
    org: 2
    match: {{ teams: [10, 11], services: [1] }}
    quota_hours: 40
    period: monthly
    starts: 2026-01-01
    timezone: Europe/Paris
    rounding: {{ increment_minutes: 15, mode: up }}
  - id: initech
    name: Initech block
    org: 3
    quota_hours: 100
    period: none
    starts: 2026-06-01
    timezone: Europe/Paris
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - the service may not be up yet
            last = error
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} ({last})")


class Stack:
    """A demo helpdesk and the real daemon, as processes on loopback, torn down whatever happens."""

    def __init__(self, bin_dir, kind, work):
        self.processes = []
        helpdesk_port, self.port = free_port(), free_port()
        log = open(os.path.join(work, f"{kind}-helpdesk.log"), "w")
        self.processes.append(subprocess.Popen([os.path.join(bin_dir, "hourledger-demo-helpdesk"), "--kind", kind, "--port", str(helpdesk_port)],
                                               stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{helpdesk_port}/apirest.php" if kind == "glpi" else f"http://127.0.0.1:{helpdesk_port}/webservices/rest.php"
        config = os.path.join(work, f"{kind}.yaml")
        with open(config, "w") as f:
            f.write((GLPI_CONFIG if kind == "glpi" else ITOP_CONFIG).format(url=url, db=os.path.join(work, f"{kind}.sqlite"), port=self.port))
        self.daemon_log = os.path.join(work, f"{kind}-daemon.log")
        env = dict(os.environ, HOURLEDGER_LOG_LEVEL="info")
        self.processes.append(subprocess.Popen([os.path.join(bin_dir, "hourledger"), "serve", "--config", config], env=env,
                                               stdout=open(self.daemon_log, "w"), stderr=subprocess.STDOUT))
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: json.load(urllib.request.urlopen(self.base + "/status", timeout=2))["helpdesk"].get("last_successful_poll"), "the first sync")

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


class Browser:
    def __init__(self, shots, language="en-US,en"):
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]:
            options.add_argument(argument)
        options.add_experimental_option("prefs", {"intl.accept_languages": language})
        self.driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(20)
        self.shots = shots

    def open(self, url):
        self.driver.get(url)
        return self

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def submit(self, selector, expect):
        """Clicks and waits for the next page to say `expect`."""
        self.one(selector).click()
        wait_for(lambda: expect in self.text(), f"'{expect}' after {selector}", timeout=10)

    def one(self, selector):
        found = self.css(selector)
        assert found, f"no element {selector} on {self.driver.current_url}"
        return found[0]

    def sign_in(self, base, login, password=PASSWORD):
        self.driver.delete_all_cookies()
        self.open(base + "/sign-in")
        self.one("#login").send_keys(login)
        self.one("#password").send_keys(password)
        self.one("form[action='/sign-in'] button[type=submit]").click()
        wait_for(lambda: not self.driver.current_url.split("?")[0].endswith("/sign-in") or self.css("#page-error"), "the sign-in answer")

    def status_of(self, url):
        """The HTTP status of a page, as the browser got it (fetch, with the session cookie)."""
        return self.driver.execute_script("return fetch(arguments[0], {credentials: 'same-origin', redirect: 'manual'}).then(r => r.status);", url)

    def screenshot(self, name):
        os.makedirs(self.shots, exist_ok=True)
        for width in (375, 1280):
            self.driver.set_window_size(width, 900)
            height = self.driver.execute_script("return Math.max(document.body.scrollHeight, 600);")
            self.driver.set_window_size(width, min(height + 120, 6000))
            self.driver.save_screenshot(os.path.join(self.shots, f"{name}-{width}.png"))
        self.driver.set_window_size(1280, 900)

    def quit(self):
        self.driver.quit()


def card(browser, contract):
    element = browser.one(f"li.card[data-contract='{contract}']")
    return {field: element.find_element(By.CSS_SELECTOR, f"dd.{field}").text for field in ("quota", "carried", "used", "remaining")}


def glpi_scenarios(stack, browser, say):
    base = stack.base
    # A wrong password: one generic message, no session.
    browser.sign_in(base, "customer.carol", "wrong-password")
    assert "Sign-in failed. Check your login and password, or try again later." in browser.one("#page-error").text
    assert browser.driver.current_url.endswith("/sign-in"), browser.driver.current_url
    browser.screenshot("sign-in-error")
    say("a wrong password shows the generic error")

    # The customer of entity 1 sees ACME with its exact figures (3600 + 1000 -> 1800 + 2700 s: 2:15 used) and no other.
    browser.sign_in(base, "customer.carol")
    assert browser.driver.current_url == base + "/contracts", browser.driver.current_url
    cards = [e.get_attribute("data-contract") for e in browser.css("li.card")]
    assert cards == ["acme-2026"], cards
    figures = card(browser, "acme-2026")
    assert figures["quota"] == "20:00" and figures["used"] == "2:15", figures
    # Eleven earlier months of 20 h unused, at most 10 h carried in: 30:00 available, 27:45 left.
    assert figures["carried"] == "10:00" and figures["remaining"] == "27:45", figures
    assert "Customer B" not in browser.text() and "VPN" not in browser.text()
    assert browser.css("svg.burn title"), "the card has no labelled burn chart"
    browser.screenshot("customer-contracts")
    browser.open(base + "/contracts/acme-2026")
    rows = {r.get_attribute("data-ticket"): r.text for r in browser.css("#tickets tbody tr")}
    assert set(rows) == {"1", "2"}, rows
    assert "Laptop & <dock> does not boot" in rows["1"] and "1:30" in rows["1"], rows["1"]
    assert "0:45" in rows["2"], rows["2"]
    browser.screenshot("customer-contract")
    say("a customer of entity 1 sees exactly her contract, to the minute, and no other customer's")

    # Another customer's contract or ticket typed into the URL: 404, as if it did not exist.
    for path in ["/contracts/beta-2026", "/contracts/beta-2026/tickets.csv", "/contracts/acme-2026/tickets/3", "/approvals", "/work"]:
        status = browser.status_of(base + path)
        assert status == 404, (path, status)
    browser.open(base + "/contracts/beta-2026")
    assert "Not found" in browser.text() and "Customer B" not in browser.text()
    say("a customer typing another contract's URL gets 404")

    # A forged form post (no token) with her session is refused.
    browser.driver.execute_script("""
        const f = document.createElement('form'); f.method = 'post'; f.action = '/sign-out';
        document.body.appendChild(f); f.submit();""")
    wait_for(lambda: "This form has expired or did not come from this page." in browser.text(), "the refusal")
    browser.open(base + "/contracts")
    assert browser.css("li.card[data-contract='acme-2026']"), "the forged sign-out signed her out"
    say("a forged form post without the CSRF token is refused and changes nothing")

    # The technician starts a timer, reloads, sees it running, stops it with a note: the entry appears, written back.
    browser.sign_in(base, "tech.alice")
    assert browser.driver.current_url == base + "/work", browser.driver.current_url
    browser.one("#start-ticket").send_keys("2")
    browser.submit("#start-timer button", "Timer started.")
    time.sleep(2)
    browser.driver.refresh()
    timer = browser.one("li.timer[data-ticket='2']")
    assert "running" in timer.get_attribute("class"), timer.get_attribute("class")
    assert browser.css(".timerbar .timer-chip"), "no timer bar"
    first = timer.find_element(By.CSS_SELECTOR, ".elapsed").text
    time.sleep(1.5)
    assert browser.one("li.timer[data-ticket='2'] .elapsed").text != first, "the elapsed time does not tick"
    browser.screenshot("technician-timer")
    browser.one("li.timer[data-ticket='2'] details.stop summary").click()
    browser.one("li.timer[data-ticket='2'] textarea[name=note]").send_keys("Reinstalled the mail client")
    browser.submit("li.timer[data-ticket='2'] form[action$='/stop'] button[type=submit]", "Timer stopped")
    assert not browser.css("li.timer[data-ticket='2']")
    week = [r.text for r in browser.css("#week tbody tr") if "#2" in r.text and "Reinstalled the mail client" in r.text]
    assert week and ("write-back queued" in week[0] or "written (task" in week[0]), week
    wait_for(lambda: "written (task" in " ".join(r.text for r in browser.open(base + "/work").css("#week tbody tr") if "Reinstalled" in r.text),
             "the write-back")
    # A manual entry on Gamma (approval required) waits for the manager.
    browser.one("#entry-ticket").send_keys("4")
    browser.one("#entry-duration").send_keys("1:30")
    browser.one("#entry-note").send_keys("Set up the laptop")
    browser.submit("#manual-entry button[type=submit]", "Entry saved")
    assert any("awaits approval" in r.text for r in browser.css("#week tbody tr")), [r.text for r in browser.css("#week tbody tr")]
    browser.screenshot("technician-work")
    say("a technician starts a timer, reloads, sees it running, stops it: the entry appears and is written back")

    # The manager approves it.
    browser.sign_in(base, "manager.max")
    browser.open(base + "/approvals")
    rows = browser.css("li.row[data-entry]")
    assert len(rows) == 1 and "Set up the laptop" in rows[0].text, [r.text for r in rows]
    browser.screenshot("manager-approvals")
    rows[0].find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("ok")
    rows[0].find_element(By.CSS_SELECTOR, "button.approve").click()
    wait_for(lambda: "Entry approved." in browser.text(), "the approval")
    assert not browser.css("li.row[data-entry]")
    browser.open(base + "/contracts/gamma-payg")
    assert "#4" in browser.one("#tickets").text and "2:00" in browser.one("#tickets").text, browser.one("#tickets").text  # 1800 s + 1:30
    assert browser.css("#invoice-total"), "a manager sees the invoice preview"
    browser.screenshot("manager-contract")
    for page in ["contracts", "alerts", "unmatched", "outbox", "reports"]:
        browser.open(base + "/" + page)
        assert browser.driver.title.endswith("HourLedger"), browser.driver.title
        browser.screenshot("manager-" + page)
    assert "Printer in lobby" in browser.open(base + "/unmatched").text()
    say("a manager approves a pending entry, and sees alerts, unmatched tickets, write-backs and reports")

    # The manager sells Customer B five more hours: the card counts them; voided, they are gone but stay on record.
    def minutes(text):
        sign = -1 if text.startswith("-") else 1
        hours, mins = text.lstrip("-").split(":")[:2]
        return sign * (int(hours) * 60 + int(mins))
    browser.open(base + "/contracts")
    before = minutes(card(browser, "beta-2026")["remaining"])
    assert not browser.css("li.card[data-contract='beta-2026'] dd.topup")
    browser.open(base + "/contracts/beta-2026")
    browser.one("#top-up-form input[name=hours]").send_keys("5")
    browser.one("#top-up-form input[name=note]").send_keys("PO 4711 & <extra>")
    browser.submit("#top-up-form button[type=submit]", "The purchased hours are added.")
    rows = browser.css("#top-ups tbody tr[data-top-up]")
    assert len(rows) == 1 and "5:00" in rows[0].text and "PO 4711 & <extra>" in rows[0].text, [r.text for r in rows]
    browser.screenshot("manager-top-up")
    browser.open(base + "/contracts")
    topped = browser.one("li.card[data-contract='beta-2026']")
    assert topped.find_element(By.CSS_SELECTOR, "dd.topup").text == "5:00"
    assert minutes(card(browser, "beta-2026")["remaining"]) == before + 300, (before, card(browser, "beta-2026"))
    browser.open(base + "/contracts/beta-2026")
    browser.one("#top-ups tr[data-top-up] input[name=reason]").send_keys("sold to the wrong customer")
    browser.submit("#top-ups tr[data-top-up] button[type=submit]", "The top-up is voided; it stays on record.")
    assert "sold to the wrong customer" in browser.one("#top-ups").text
    browser.open(base + "/contracts")
    assert not browser.css("li.card[data-contract='beta-2026'] dd.topup")
    assert minutes(card(browser, "beta-2026")["remaining"]) == before
    say("a manager adds purchased hours on the contract page, the card counts them, and a void takes them back")


def itop_scenarios(stack, browser, french, say):
    base = stack.base
    # The agent logs 1:30 on the Globex ticket; the portal customer then sees it, and only Globex.
    browser.sign_in(base, "agent.anna")
    assert browser.driver.current_url == base + "/work", browser.driver.current_url
    browser.one("#entry-ticket").send_keys("1")
    browser.one("#entry-duration").send_keys("1:20")
    browser.one("#entry-note").send_keys("Cleared the jam")
    browser.submit("#manual-entry button[type=submit]", "Entry saved")
    browser.sign_in(base, "lena.fischer", "wrong")
    assert "Sign-in failed." in browser.one("#page-error").text
    browser.sign_in(base, "lena.fischer")
    cards = [e.get_attribute("data-contract") for e in browser.css("li.card")]
    assert cards == ["globex"], cards
    figures = card(browser, "globex")
    assert figures["used"] == "1:30" and figures["remaining"] == "38:30", figures  # 1:20 rounded up to 15 minutes
    assert browser.status_of(base + "/contracts/initech") == 404
    browser.screenshot("itop-customer-contracts")
    say("iTop: a portal customer sees her organisation's contract with the agent's time, and gets 404 for another's")
    french.sign_in(base, "lena.fischer")
    assert "Consommé" in french.text() and "Contrats" in french.text(), french.text()
    french.screenshot("itop-customer-contracts-fr")
    say("iTop: the same page in French, chosen from Accept-Language")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--shots", default=".build/screenshots")
    parser.add_argument("--kind", default="all", choices=["glpi", "itop", "all"])
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="hourledger-browser-")
    passed = 0

    def say(line):
        nonlocal passed
        passed += 1
        print("ok", line, flush=True)

    for kind in (["glpi", "itop"] if args.kind == "all" else [args.kind]):
        stack = Stack(args.bin, kind, work)
        browsers = []
        try:
            browser = Browser(args.shots)
            browsers.append(browser)
            if kind == "glpi":
                glpi_scenarios(stack, browser, say)
            else:
                french = Browser(args.shots, language="fr-FR,fr")
                browsers.append(french)
                itop_scenarios(stack, browser, french, say)
        except (AssertionError, WebDriverException) as failure:
            traceback.print_exc()
            for b in browsers:
                try:
                    print("--- page", b.driver.current_url, "\n", b.text()[:3000], file=sys.stderr)
                except Exception:  # noqa: BLE001
                    pass
            print("--- daemon log (tail)\n" + "".join(open(stack.daemon_log).readlines()[-30:]), file=sys.stderr)
            print(f"FAILED ({kind}): {failure}", flush=True)
            sys.exit(1)
        finally:
            for b in browsers:
                b.quit()
            stack.stop()
    print(f"{passed} browser scenarios passed; screenshots in {args.shots}", flush=True)


if __name__ == "__main__":
    main()
