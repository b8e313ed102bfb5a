"""The status page in a real browser (issue 15): Debian's chromium, headless,
driven by chromium-driver through python3-selenium.  It logs in, sees the
charts drawn (SVG marks with non-zero data once mail has flowed), holds and
releases a queued message with the page's buttons, and a form sent without
its CSRF token is refused.  The screenshot goes to $POSTOFFICE_SCREENSHOT
when set (docs/status-page.png was made so), else into the test's
directory.

Runs once per suite: it skips itself under the sanitizer build (tests/run
runs the integration tests twice) and when chromium, its driver or selenium
are missing (scripts/setup installs them)."""
import os
import shutil
import unittest

from adminclient import ADMIN_CONFIG
from harness import DeadPort, Server, sanitized, wait_for

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
except ImportError:
    webdriver = None

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")


def skip_reason():
    if os.environ.get("POSTOFFICE_NO_BROWSER"):
        return "POSTOFFICE_NO_BROWSER is set"
    if sanitized():
        return "the browser test runs against the normal build only"
    if webdriver is None or CHROMIUM is None or DRIVER is None:
        return "chromium, chromium-driver or python3-selenium missing (scripts/setup)"
    return None


@unittest.skipIf(skip_reason() is not None, skip_reason())
class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dead = DeadPort()
        cls.srv = Server(extra_config=ADMIN_CONFIG + "[routes]\nc.test = 127.0.0.1:%d\n" % cls.dead.port)
        cls.srv.start()
        cls.srv.add_domain("a.test")
        cls.srv.add_user("alice@a.test", "alicepw")
        cls.srv.add_user("bob@a.test", "bobpw")
        cls.srv.cli("admin", "add", "boss", input=b"bosspw\n")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1700", "--user-data-dir=" + os.path.join(cls.srv.dir, "chromium"),
                    "--no-first-run", "--disable-extensions"):
            opts.add_argument(arg)
        cls.browser = webdriver.Chrome(service=Service(DRIVER, log_output=os.devnull), options=opts)
        cls.browser.set_page_load_timeout(30)
        cls.browser.implicitly_wait(10)
        cls.base = "http://127.0.0.1:%d" % cls.srv.port("admin")

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.srv.cleanup()
        cls.dead.close()

    def mail(self):
        """Local mail, a reject, and one message for c.test that waits in
        the queue (nothing listens there)."""
        with self.srv.smtp() as s:
            for i in range(5):
                s.sendmail("news@ext.test", ["alice@a.test", "bob@a.test"][: 1 + i % 2],
                           b"Subject: hello %d\r\n\r\n%s\r\n" % (i, b"x" * (200 * i)))
            s.mail("spam@ext.test")
            s.rcpt("nobody@a.test")
        self.srv.submit("alice@a.test", "alicepw", "alice@a.test", ["carol@c.test"],
                        b"Subject: waiting\r\n\r\nfor c.test\r\n")
        self.assertTrue(wait_for(lambda: "queue deferred id=" in self.srv.log_text()))
        wait_for(lambda: False, timeout=0.5)  # the runner's save after the deferral

    def until(self, what, condition):
        """Waits for a page the click led to (a click returns before the
        next page is loaded)."""
        WebDriverWait(self.browser, 20, poll_frequency=0.05,
                      ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
            lambda b: condition(b), message=what)

    def text_of(self, element_id):
        return self.browser.find_element(By.ID, element_id).text

    def nonzero(self, selector):
        marks = self.browser.find_elements(By.CSS_SELECTOR, selector)
        return [m for m in marks if float(m.get_attribute("data-value")) > 0]

    def test_status_page(self):
        b = self.browser
        self.mail()
        b.get(self.base + "/")
        self.assertTrue(b.current_url.endswith("/login"))
        b.find_element(By.ID, "user").send_keys("boss")
        b.find_element(By.ID, "password").send_keys("wrong")
        b.find_element(By.ID, "login").click()
        self.assertIn("Wrong name or password", self.text_of("login-error"))
        b.find_element(By.ID, "user").clear()
        b.find_element(By.ID, "user").send_keys("boss")
        b.find_element(By.ID, "password").send_keys("bosspw")
        b.find_element(By.ID, "login").click()
        self.until("the status page", lambda b: b.current_url == self.base + "/")
        b.find_element(By.ID, "overview")
        # The page has no script; the charts are drawn and carry the data.
        self.assertEqual(b.execute_script("return document.scripts.length"), 0)
        for chart in ("chart-messages", "chart-queue", "chart-connections", "chart-tls"):
            svg = b.find_element(By.ID, chart)
            self.assertGreater(svg.size["height"], 20, chart)
            self.assertGreater(svg.size["width"], 200, chart)
        received = self.nonzero("#chart-messages rect.s0")
        self.assertTrue(received, "no bar of received mail")
        self.assertGreater(received[-1].size["height"], 0)
        self.assertTrue(self.nonzero("#chart-messages rect.s1"), "no bar of delivered mail")
        self.assertTrue(self.nonzero("#chart-connections rect"))
        self.assertTrue(self.nonzero("#chart-queue circle"))
        self.assertTrue(self.nonzero("#chart-tls rect"))  # the submission used STARTTLS
        self.assertIn("c.test", b.find_element(By.ID, "deferred").text)
        self.assertIn("unknown_user", b.find_element(By.ID, "rejects").text)
        self.assertIn("news@ext.test", b.find_element(By.ID, "top-senders").text)
        self.assertIn("alice@a.test", b.find_element(By.ID, "top-recipients").text)
        shot = os.environ.get("POSTOFFICE_SCREENSHOT") or os.path.join(self.srv.dir, "status-page.png")
        self.assertTrue(b.save_screenshot(shot))
        self.assertGreater(os.path.getsize(shot), 10000)

        # Hold and release through the queue pages' buttons.
        b.find_element(By.LINK_TEXT, "Queue").click()
        row = b.find_element(By.CSS_SELECTOR, "#queue tr.msg")
        qid = row.get_attribute("data-id")
        hold_file = os.path.join(self.srv.data_dir, "queue", qid + ".hold")
        row.find_element(By.XPATH, ".//button[text()='Hold']").click()
        self.until("the held message", lambda b: b.current_url == self.base + "/queue/" + qid)
        self.until("held", lambda b: "Held yes" in self.text_of("envelope"))
        self.assertTrue(os.path.exists(hold_file))
        b.find_element(By.XPATH, "//button[text()='Release']").click()
        self.until("released", lambda b: "Held no" in self.text_of("envelope"))
        self.assertFalse(os.path.exists(hold_file))

        # The same form without its token is refused, and nothing is held.
        b.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
        b.find_element(By.XPATH, "//button[text()='Hold']").click()
        self.until("the refusal", lambda b: "Missing or invalid CSRF token" in b.page_source)
        self.assertFalse(os.path.exists(hold_file))
        self.assertIn("reason=csrf", self.srv.log_text())


if __name__ == "__main__":
    unittest.main()
