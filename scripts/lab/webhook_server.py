#!/usr/bin/python3
"""A real HTTP server on 127.0.0.1 for webhook tests: it answers 503 to the first N POSTs,
then 200, and appends every body it accepted to a log (one JSON document per line).

    webhook_server.py --fail-first 3 --log /tmp/x/received.jsonl   # prints the port it chose
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--envelope", action="store_true",
                        help="log {signature, authorization, raw} instead of the body, to check signatures")
    args = parser.parse_args()
    lock = threading.Lock()
    state = {"seen": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                state["seen"] += 1
                failing = state["seen"] <= args.fail_first
                if not failing:
                    with open(args.log, "a", encoding="utf-8") as handle:
                        if args.envelope:
                            handle.write(json.dumps({"signature": self.headers.get("Carteiro-Signature"),
                                                     "authorization": self.headers.get("Authorization"),
                                                     "raw": body.decode("utf-8")}) + "\n")
                        else:
                            handle.write(json.dumps(json.loads(body)) + "\n")
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
