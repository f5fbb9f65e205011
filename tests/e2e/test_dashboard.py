"""The dashboard in a real headless Chromium: the page loads, calls the API and renders what
respscope saw (KPIs, key patterns, commands), with and without an admin token."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
import redis


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def render(url, screenshot=None):
    """The DOM after the page's scripts ran (virtual time lets the fetches complete)."""
    profile = tempfile.mkdtemp(prefix="respscope-chromium-")
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1300",
            "--virtual-time-budget=5000"]
    if screenshot:
        args.append(f"--screenshot={screenshot}")
    else:
        args.append("--dump-dom")
    try:
        out = subprocess.run(args + [url], capture_output=True, text=True, timeout=90)
        return out.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@unittest.skipUnless(chromium(), "chromium is not installed")
class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.Redis()
        cls.proxy = harness.Respscope(cls.redis.url())
        r = redis.Redis(port=cls.proxy.port)
        for i in range(40):
            r.set(f"user:{i}:profile", "x")
        for i in range(60):
            r.get(f"user:{i}:profile")  # 40 hits, 20 misses
        r.close()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.redis.stop()

    def test_renders_live_numbers(self):
        dom = render(f"http://127.0.0.1:{self.proxy.admin_port}/")
        self.assertIn("respscope", dom)
        self.assertIn("user:{id}:profile", dom)       # key pattern table
        self.assertIn("66.7%", dom)                     # 40 / 60 lookups hit
        self.assertRegex(dom, r'id="k-total">[0-9,]+ total')
        self.assertIn("upstream up", dom)
        self.assertRegex(dom, r'id="status">updated ')

    def test_screenshot(self):
        path = os.path.join(tempfile.gettempdir(), "respscope-dashboard.png")
        render(f"http://127.0.0.1:{self.proxy.admin_port}/", screenshot=path)
        self.assertTrue(os.path.exists(path))
        self.assertGreater(os.path.getsize(path), 20000)  # a rendered page, not a blank one
        print(f"dashboard screenshot: {path}")


@unittest.skipUnless(chromium(), "chromium is not installed")
class DashboardWithToken(unittest.TestCase):
    def test_page_open_data_protected(self):
        with harness.Redis() as rd, harness.Respscope(
                rd.url(), env={"RESPSCOPE_ADMIN_TOKEN": "t0ken"}) as proxy:
            status, body = proxy.http("/")
            self.assertEqual(status, 200)
            self.assertEqual(proxy.http("/api/v1/overview")[0], 401)
            self.assertEqual(proxy.http("/api/v1/overview", token="t0ken")[0], 200)
            dom = render(f"http://127.0.0.1:{proxy.admin_port}/")
            # Without a token the page asks for one and shows no data.
            self.assertIn("admin token required", dom)
            self.assertNotRegex(dom, r'id="k-total">[0-9,]+ total')


if __name__ == "__main__":
    unittest.main()
