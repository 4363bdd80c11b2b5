#!/usr/bin/python3
"""A hostile OAuth 2.0 endpoint on 127.0.0.1 for Carteiro's tests (standard library only).

    hostile_oauth.py --log FILE      # prints the port it chose

POST /device   a device authorization whose user_code and verification_uri carry terminal
               escape sequences and a line break, and whose interval is a day
POST /token    device_code: authorization_pending, for ever; authorization_code: code refuse-me
               is refused with an error_description that holds a line break and a forged log
               line; any other code is exchanged (and logged to FILE, one per line)
"""
import argparse
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            fields = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path.startswith("/device"):
                return self.answer(200, {
                    "device_code": "dev-1",
                    "user_code": "AB\x1b[2JCD\x1b]0;PWNED\x07",
                    "verification_uri": "https://login.example/\x1b[1;1H\nFORGED LINE",
                    "expires_in": 900,
                    "interval": 86400,
                })
            grant = fields.get("grant_type", "")
            if grant.endswith("device_code"):
                return self.answer(400, {"error": "authorization_pending"})
            code = fields.get("code", "")
            if code == "refuse-me":
                return self.answer(400, {"error": "invalid_grant",
                                         "error_description": "no\n<2>carteiro: FORGED \x1b[31mred\u202e"})
            with open(args.log, "a", encoding="utf-8") as handle:
                handle.write(code + "\n")
            return self.answer(200, {"access_token": "at-" + code, "refresh_token": "rt-" + code,
                                     "expires_in": 3600, "token_type": "Bearer"})

        def log_message(self, *arguments):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
