"""A webhook receiver that verifies every delivery with the Standard Webhooks reference library
(PyPI `standardwebhooks`), as a user of tokensmith's webhooks would.

    webhook_receiver.py SECRET_FILE LOG_FILE PORT_FILE

Listens on 127.0.0.1 (a free port, written to PORT_FILE), reads the `whsec_…` secret from
SECRET_FILE at each request (it is known only once the receiver is registered), answers 204 to
a verified delivery and 400 to anything else, and appends one JSON line per request to LOG_FILE:
{"verified": bool, "id": webhook-id, "type": the payload's type}.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook

SECRET_FILE, LOG_FILE, PORT_FILE = sys.argv[1:4]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            with open(SECRET_FILE, encoding="utf-8") as f:
                payload = Webhook(f.read().strip()).verify(body, headers)
            entry = {"verified": True, "id": headers.get("webhook-id"), "type": payload["type"]}
        except Exception as e:  # the library raises on a bad or stale signature
            entry = {"verified": False, "id": headers.get("webhook-id"), "error": type(e).__name__}
        with open(LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(204 if entry["verified"] else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Receiver)
with open(PORT_FILE, "w", encoding="utf-8") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
