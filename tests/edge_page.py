"""Open the edge page in headless Chromium with no network but loopback, and print its answers.

Run as `unshare -n python tests/edge_page.py SITE_DIR CASES.json VARIANT`: in a new network
namespace only the loopback interface exists (down until brought up here), so the page can
load nothing but what this process serves over http://127.0.0.1 (a page opened from file://
cannot load WebAssembly or ES modules). The page POSTs its answers to /results.
"""

import fcntl
import http.server
import json
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

from headless_chromium import command  # a sibling module: this file runs as a script

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req + b"\0" * 14)[:18])[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP) + b"\0" * 14)


def main(site: str, cases: str, variant: str) -> int:
    loopback_up()
    results: list = []
    done = threading.Event()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=site, **kw)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            results.append(json.loads(body))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *args):
            pass

    Handler.extensions_map = {**Handler.extensions_map, ".wasm": "application/wasm", ".js": "text/javascript"}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shutil.copy(cases, f"{site}/cases.json")
    url = f"http://127.0.0.1:{server.server_port}/index.html?cases=cases.json&variant={variant}"
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            command(profile, url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            finished = done.wait(180)
        finally:
            browser.kill()
            _, err = browser.communicate()
    server.shutdown()
    if not finished:
        print(json.dumps({"error": "no answer from the page in 180 s", "stderr": err[-3000:]}))
        return 1
    print(json.dumps(results[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
