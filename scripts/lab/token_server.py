#!/usr/bin/python3
"""The mail lab's OAuth 2.0 authorization server (Python's standard library only), on 127.0.0.1.

Grants: authorization code with PKCE (RFC 7636), device authorization (RFC 8628), client
credentials (with a secret, or a certificate's client assertion: RS256 with x5t, PS256 with
x5t#S256), JWT bearer (RFC 7523, RS256 assertions checked against the client's public key),
and refresh token with rotation (the superseded refresh token stays usable for a reuse interval,
as at the big providers, so that a client that crashed before saving the new one recovers).
Access tokens live 60 s unless told otherwise. RFC 7662 introspection (for Dovecot and the lab's
SMTP server), RFC 7009 revocation.

The clients it knows are in LAB/oauth/clients.json (written by scripts/mail-lab):
  {"ID": {"secret": "..." | null, "app_user": "carla" (client credentials act for this mailbox),
          "rsa_n": "hex", "rsa_e": 65537 (a JWT bearer client: the service account's public key)}}

Test hooks (no browser, no person):
  GET  /authorize?...&login_hint=USER   consents at once as USER (or the consent_user setting),
                                         redirecting to redirect_uri with the code
  POST /test/device      user_code=..&user=..&decision=approve|deny
  POST /test/revoke-user user=..         revokes every token of the user (a changed password)
  POST /test/fault       mode=none|5xx|slow|invalid_grant&count=N&delay=S (on /token)
  POST /test/settings    access_ttl=S&reuse_interval=S&consent_user=USER&device_interval=S
                         &revoke_on_reuse=1 (a superseded refresh token presented again revokes
                         every token of its grant, as the OAuth 2.0 Security BCP recommends)
  GET  /test/stats       token requests by grant, and the faults served
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
STATE = {
    "access": {},     # token -> {"user", "client", "scope", "exp"}
    "refresh": {},    # token -> {"user", "client", "scope", "superseded_at", "revoked"}
    "codes": {},      # code -> {"client", "redirect_uri", "challenge", "user", "scope", "exp"}
    "devices": {},    # device_code -> {"client", "user_code", "scope", "exp", "status", "user", "interval", "last_poll"}
    "settings": {"access_ttl": 60, "reuse_interval": 300, "consent_user": None, "device_interval": 1},
    "fault": {"mode": "none", "count": 0, "delay": 0},
    "stats": {},
}
CLIENTS_FILE = None


def clients():
    try:
        with open(CLIENTS_FILE, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rs256_valid(signing_input, signature, n_hex, e):
    """PKCS #1 v1.5 with SHA-256, checked with the public key's numbers."""
    n = int(n_hex, 16)
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
    return secrets.compare_digest(em, expected)


def mgf1(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def ps256_valid(signing_input, signature, n_hex, e):
    """RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 8017 §9.1.2)."""
    n = int(n_hex, 16)
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    em_bits = n.bit_length() - 1
    em_len = (em_bits + 7) // 8
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")[-em_len:]
    h_len = s_len = 32
    if em[-1] != 0xBC or em_len < h_len + s_len + 2:
        return False
    masked, digest = em[: em_len - h_len - 1], em[em_len - h_len - 1: -1]
    unused = 8 * em_len - em_bits
    if masked[0] & (0xFF << (8 - unused)) & 0xFF:
        return False
    db = bytes(a ^ b for a, b in zip(masked, mgf1(digest, em_len - h_len - 1)))
    db = bytes([db[0] & (0xFF >> unused)]) + db[1:]
    padding = em_len - h_len - s_len - 2
    if db[:padding] != b"\x00" * padding or db[padding] != 1:
        return False
    salt = db[-s_len:]
    m_hash = hashlib.sha256(signing_input).digest()
    return secrets.compare_digest(hashlib.sha256(b"\x00" * 8 + m_hash + salt).digest(), digest)


def assertion_client(fields, known, token_url):
    """A client authenticated by a certificate's assertion (RFC 7523 §2.2, as Entra takes it):
    (client id, None) when it holds, (None, reason) when it does not, (None, None) when there is none."""
    if fields.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        return None, None
    try:
        header_b64, payload_b64, signature_b64 = fields.get("client_assertion", "").split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(payload_b64))
        signature = b64url_decode(signature_b64)
    except (ValueError, TypeError):
        return None, "AADSTS50027: the client assertion is not a JWT"
    ident = claims.get("iss")
    client = known.get(ident)
    if client is None or "cert_n" not in client or fields.get("client_id", ident) != ident or claims.get("sub") != ident:
        return None, "AADSTS700016: unknown application, or iss and sub are not its client id"
    signing_input = f"{header_b64}.{payload_b64}".encode()
    alg = header.get("alg")
    if alg == "RS256":
        if header.get("x5t") != client["x5t"]:
            return None, "AADSTS700027: x5t names no certificate of this application"
        valid = rs256_valid(signing_input, signature, client["cert_n"], int(client.get("cert_e", 65537)))
    elif alg == "PS256":
        if header.get("x5t#S256") != client["x5t#S256"]:
            return None, "AADSTS700027: x5t#S256 names no certificate of this application"
        valid = ps256_valid(signing_input, signature, client["cert_n"], int(client.get("cert_e", 65537)))
    else:
        return None, f"AADSTS5002730: the algorithm {alg} is not accepted"
    if not valid:
        return None, "AADSTS700027: the client assertion's signature does not verify"
    now = time.time()
    if claims.get("aud") != token_url:
        return None, f"AADSTS700024: aud must be {token_url}"
    if not claims.get("jti") or not (claims.get("nbf", claims.get("iat", 0)) - 60 <= now <= claims.get("exp", 0) + 60) \
            or claims["exp"] - claims.get("iat", claims.get("nbf", 0)) > 600:
        return None, "AADSTS700024: the assertion is expired, lives longer than 10 minutes, or has no jti"
    return ident, None


def issue(client, user, scope, with_refresh):
    now = time.time()
    access = "at-" + secrets.token_urlsafe(24)
    STATE["access"][access] = {"user": user, "client": client, "scope": scope, "exp": now + STATE["settings"]["access_ttl"]}
    body = {"access_token": access, "token_type": "Bearer", "expires_in": STATE["settings"]["access_ttl"], "scope": scope}
    if with_refresh:
        refresh = "rt-" + secrets.token_urlsafe(32)
        STATE["refresh"][refresh] = {"user": user, "client": client, "scope": scope, "superseded_at": None, "revoked": False}
        body["refresh_token"] = refresh
    return body


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "lab-oauth/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, description, status=400):
        self.reply(status, {"error": code, "error_description": description})

    def form(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        fields = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        query = urllib.parse.urlparse(self.path).query
        for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items():
            fields.setdefault(k, v[-1])
        return fields

    def client_auth(self, fields):
        """client_secret_basic or client_secret_post; public clients send only client_id."""
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                ident, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                return urllib.parse.unquote_plus(ident), urllib.parse.unquote_plus(secret)
            except ValueError:
                return None, None
        return fields.get("client_id"), fields.get("client_secret")

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/authorize":
            return self.authorize({k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()})
        if url.path == "/test/stats":
            with LOCK:
                return self.reply(200, {"stats": STATE["stats"], "fault": STATE["fault"]})
        self.error("not_found", url.path, 404)

    def authorize(self, q):
        known = clients()
        if q.get("client_id") not in known:
            return self.error("invalid_client", "unknown client")
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return self.error("invalid_request", "response_type=code with an S256 code_challenge is required")
        redirect = q.get("redirect_uri", "")
        with LOCK:
            user = q.get("login_hint") or STATE["settings"]["consent_user"]
            if user == "deny" or not user:
                params = {"error": "access_denied", "state": q.get("state", "")}
            else:
                code = "code-" + secrets.token_urlsafe(16)
                STATE["codes"][code] = {"client": q["client_id"], "redirect_uri": redirect, "challenge": q["code_challenge"],
                                        "user": user, "scope": q.get("scope", ""), "exp": time.time() + 120}
                params = {"code": code, "state": q.get("state", "")}
        separator = "&" if "?" in redirect else "?"
        self.send_response(302)
        self.send_header("Location", redirect + separator + urllib.parse.urlencode(params))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        fields = self.form()
        handler = {
            "/token": self.token, "/device_authorization": self.device_authorization, "/introspect": self.introspect,
            "/revoke": self.revoke, "/test/device": self.test_device, "/test/revoke-user": self.test_revoke_user,
            "/test/fault": self.test_fault, "/test/settings": self.test_settings,
        }.get(path)
        if handler is None:
            return self.error("not_found", path, 404)
        handler(fields)

    def token(self, fields):
        grant = fields.get("grant_type", "")
        with LOCK:
            STATE["stats"][grant] = STATE["stats"].get(grant, 0) + 1
            fault = dict(STATE["fault"])
            if fault["mode"] != "none" and fault["count"] > 0:
                STATE["fault"]["count"] -= 1
                STATE["stats"]["faults"] = STATE["stats"].get("faults", 0) + 1
            else:
                fault["mode"] = "none"
        if fault["mode"] == "5xx":
            return self.reply(503, {"error": "temporarily_unavailable", "error_description": "lab fault: 503"})
        if fault["mode"] == "slow":
            time.sleep(float(fault["delay"] or 30))
        if fault["mode"] == "invalid_grant":
            return self.error("invalid_grant", "AADSTS70008: lab fault: the refresh token has expired or been revoked")
        ident, secret = self.client_auth(fields)
        known = clients()
        asserted, refusal = assertion_client(fields, known, f"http://{self.headers.get('Host')}/token")
        if refusal:
            return self.error("invalid_client", refusal, 401)
        if asserted:
            ident = asserted
        client = known.get(ident)
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" and not asserted:
            if client is None or (client.get("secret") is not None and secret != client["secret"]) \
                    or (client.get("secret") is None and "cert_n" in client):
                return self.error("invalid_client", "AADSTS7000215: invalid client secret or unknown client", 401)
        with LOCK:
            if grant == "authorization_code":
                code = STATE["codes"].pop(fields.get("code", ""), None)
                if not code or code["exp"] < time.time() or code["client"] != ident:
                    return self.error("invalid_grant", "the code is unknown, used or expired")
                if code["redirect_uri"] != fields.get("redirect_uri", ""):
                    return self.error("invalid_grant", "redirect_uri does not match")
                verifier = fields.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge != code["challenge"]:
                    return self.error("invalid_grant", "PKCE verification failed")
                return self.reply(200, issue(ident, code["user"], code["scope"], True))
            if grant == "refresh_token":
                token = fields.get("refresh_token", "")
                entry = STATE["refresh"].get(token)
                now = time.time()
                if not entry or entry["revoked"] or entry["client"] != ident:
                    return self.error("invalid_grant", "AADSTS70000: the refresh token is not valid (revoked, expired or unknown)")
                if entry["superseded_at"] is not None and STATE["settings"].get("revoke_on_reuse"):
                    STATE["stats"]["reuse_revocations"] = STATE["stats"].get("reuse_revocations", 0) + 1
                    for other in STATE["refresh"].values():
                        if other["user"] == entry["user"] and other["client"] == entry["client"]:
                            other["revoked"] = True
                    return self.error("invalid_grant", "AADSTS70000: a replaced refresh token was presented again: the grant is revoked")
                if entry["superseded_at"] is not None and now - entry["superseded_at"] > STATE["settings"]["reuse_interval"]:
                    return self.error("invalid_grant", "AADSTS70000: the refresh token was replaced and its reuse interval is over")
                if entry["superseded_at"] is None:
                    entry["superseded_at"] = now
                return self.reply(200, issue(ident, entry["user"], entry["scope"], True))
            if grant == "client_credentials":
                if not client.get("app_user"):
                    return self.error("unauthorized_client", "this client may not use client credentials")
                scope = fields.get("scope", "")
                if scope and not scope.endswith("/.default") and scope != "mail":
                    return self.error("invalid_scope", f"AADSTS1002012: the scope {scope} is not valid for client credentials")
                return self.reply(200, issue(ident, client["app_user"], scope, False))
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                device = STATE["devices"].get(fields.get("device_code", ""))
                if not device or device["client"] != ident:
                    return self.error("invalid_grant", "unknown device code")
                now = time.time()
                if now > device["exp"]:
                    return self.error("expired_token", "the device code has expired")
                if device["last_poll"] and now - device["last_poll"] < device["interval"] - 0.05:
                    device["interval"] += 5
                    device["last_poll"] = now
                    return self.error("slow_down", "polling too fast")
                device["last_poll"] = now
                if device["status"] == "pending":
                    return self.error("authorization_pending", "the user has not answered yet")
                if device["status"] == "denied":
                    return self.error("access_denied", "the user declined")
                del STATE["devices"][fields["device_code"]]
                return self.reply(200, issue(ident, device["user"], device["scope"], True))
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                return self.jwt_bearer(fields, known)
        return self.error("unsupported_grant_type", grant)

    def jwt_bearer(self, fields, known):
        try:
            header_b64, payload_b64, signature_b64 = fields.get("assertion", "").split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(payload_b64))
            signature = b64url_decode(signature_b64)
        except (ValueError, TypeError):
            return self.error("invalid_grant", "the assertion is not a JWT")
        client = known.get(claims.get("iss"))
        if header.get("alg") != "RS256" or client is None or "rsa_n" not in client:
            return self.error("invalid_client", "unknown service account or algorithm")
        if not rs256_valid(f"{header_b64}.{payload_b64}".encode(), signature, client["rsa_n"], int(client.get("rsa_e", 65537))):
            return self.error("invalid_grant", "invalid JWT signature")
        now = time.time()
        token_url = f"http://{self.headers.get('Host')}/token"
        if claims.get("aud") != token_url:
            return self.error("invalid_grant", f"aud must be {token_url}")
        if not (claims.get("iat", 0) - 60 <= now <= claims.get("exp", 0) + 60) or claims["exp"] - claims["iat"] > 3600:
            return self.error("invalid_grant", "the assertion is expired or lives longer than an hour")
        if not claims.get("sub"):
            return self.error("invalid_grant", "domain-wide delegation needs sub")
        return self.reply(200, issue(claims["iss"], claims["sub"], claims.get("scope", ""), False))

    def device_authorization(self, fields):
        ident, _ = self.client_auth(fields)
        if ident not in clients():
            return self.error("invalid_client", "unknown client", 401)
        device_code = "dc-" + secrets.token_urlsafe(24)
        user_code = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(8))
        with LOCK:
            interval = STATE["settings"]["device_interval"]
            STATE["devices"][device_code] = {"client": ident, "user_code": user_code, "scope": fields.get("scope", ""),
                                             "exp": time.time() + 600, "status": "pending", "user": None,
                                             "interval": interval, "last_poll": None}
        host = self.headers.get("Host")
        self.reply(200, {"device_code": device_code, "user_code": user_code, "verification_uri": f"http://{host}/device",
                         "verification_uri_complete": f"http://{host}/device?user_code={user_code}",
                         "expires_in": 600, "interval": interval})

    def introspect(self, fields):
        token = fields.get("token", "")
        with LOCK:
            entry = STATE["access"].get(token)
            if not entry or entry["exp"] < time.time():
                return self.reply(200, {"active": False})
            return self.reply(200, {"active": True, "username": entry["user"], "scope": entry["scope"],
                                    "client_id": entry["client"], "exp": int(entry["exp"])})

    def revoke(self, fields):
        token = fields.get("token", "")
        with LOCK:
            STATE["access"].pop(token, None)
            if token in STATE["refresh"]:
                STATE["refresh"][token]["revoked"] = True
        self.reply(200, {})

    def test_device(self, fields):
        with LOCK:
            for device in STATE["devices"].values():
                if device["user_code"] == fields.get("user_code"):
                    device["status"] = "approved" if fields.get("decision", "approve") == "approve" else "denied"
                    device["user"] = fields.get("user")
                    return self.reply(200, {"ok": True})
        self.error("not_found", "no such user code", 404)

    def test_revoke_user(self, fields):
        user = fields.get("user")
        with LOCK:
            for entry in STATE["refresh"].values():
                if entry["user"] == user:
                    entry["revoked"] = True
            for token in [t for t, e in STATE["access"].items() if e["user"] == user]:
                del STATE["access"][token]
        self.reply(200, {"ok": True})

    def test_fault(self, fields):
        with LOCK:
            STATE["fault"] = {"mode": fields.get("mode", "none"), "count": int(fields.get("count", "1000000")),
                              "delay": float(fields.get("delay", "0"))}
        self.reply(200, STATE["fault"])

    def test_settings(self, fields):
        with LOCK:
            for key in ("access_ttl", "reuse_interval", "device_interval", "revoke_on_reuse"):
                if key in fields:
                    STATE["settings"][key] = int(fields[key])
            if "consent_user" in fields:
                STATE["settings"]["consent_user"] = fields["consent_user"] or None
            return self.reply(200, STATE["settings"])


def main():
    global CLIENTS_FILE
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    CLIENTS_FILE = os.path.join(args.lab, "oauth", "clients.json")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("lab token server ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
