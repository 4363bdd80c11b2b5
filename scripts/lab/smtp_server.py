#!/usr/bin/python3
"""The mail lab's SMTP server: a real SMTP implementation (aiosmtpd) on 127.0.0.1.

Three listeners: submission with STARTTLS and AUTH, implicit TLS with AUTH, and plain text
without STARTTLS. Every accepted message is stored as NAME.eml with its envelope in NAME.json,
so that tests read back exactly what the server received.

Recipients can be refused on purpose: a local part starting with a reply code and a dash
(`550-nobody@lab.test`, `451-later@lab.test`) is answered with that code; so is any address
listed in rules.json ({"addr@x": "550 5.1.1 no such user"}), read again at every RCPT.
"""
import argparse
import asyncio
import base64
import json
import urllib.parse
import urllib.request
import os
import re
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

CODE_PREFIX = re.compile(r"^([45]\d\d)-")


def parse_xoauth2(text):
    """user=U^Aauth=Bearer T^A^A"""
    fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    return fields.get("user"), auth[7:] if auth.startswith("Bearer ") else None


def parse_oauthbearer(text):
    """n,a=U,^Ahost=..^Aport=..^Aauth=Bearer T^A^A (RFC 7628)"""
    header, _, rest = text.partition("\x01")
    user = None
    for part in header.split(","):
        if part.startswith("a="):
            user = part[2:].replace("=2C", ",").replace("=3D", "=")
    fields = dict(part.split("=", 1) for part in rest.split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    return user, auth[7:] if auth.startswith("Bearer ") else None


def load_users(path):
    users = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split(":")
            if len(parts) >= 2 and parts[1].startswith("{PLAIN}"):
                users[parts[0]] = parts[1][len("{PLAIN}"):]
    return users


class Authenticator:
    def __init__(self, users_file):
        self.users_file = users_file

    def __call__(self, server, session, envelope, mechanism, auth_data):
        # handled=False: aiosmtpd then answers 535 itself; True would leave the client hanging.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        users = load_users(self.users_file)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=users.get(login) == password, handled=False, auth_data=login)


def introspect(token_port, token):
    """The token's user when the lab's token server says it is active (RFC 7662), else None."""
    data = urllib.parse.urlencode({"token": token}).encode()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{token_port}/introspect", data, timeout=10) as reply:
            body = json.load(reply)
    except (OSError, ValueError):
        return None
    return body.get("username") if body.get("active") in (True, "true") else None


class Handler:
    def __init__(self, spool, rules_file, listener, token_port):
        self.spool = spool
        self.rules_file = rules_file
        self.listener = listener
        self.token_port = token_port

    async def bearer(self, server, args, parse):
        """XOAUTH2 and OAUTHBEARER: the initial response (or one asked for), the token checked by
        introspection; a refusal sends the JSON error challenge that Gmail and Outlook send,
        waits for the client's empty answer, then 535."""
        if len(args) > 1:
            raw = base64.b64decode(args[1])
        else:
            raw = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(raw, bytes):
                return AuthResult(success=False, handled=True)
        user, token = parse(raw.decode("utf-8", "replace"))
        loop = asyncio.get_running_loop()
        owner = await loop.run_in_executor(None, introspect, self.token_port, token or "")
        if owner is not None and owner == user:
            return AuthResult(success=True, handled=False, auth_data=user)
        error = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
        if parse is parse_oauthbearer:
            error = {"status": "invalid_token", "scope": "mail", "openid-configuration": ""}
        await server.challenge_auth(json.dumps(error).encode())
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and token not accepted (lab)")

    async def auth_XOAUTH2(self, server, args):
        return await self.bearer(server, args, parse_xoauth2)

    async def auth_OAUTHBEARER(self, server, args):
        return await self.bearer(server, args, parse_oauthbearer)

    def rule_for(self, address):
        match = CODE_PREFIX.match(address)
        if match:
            code = match.group(1)
            text = "4.3.0 try again later (lab rule)" if code.startswith("4") else "5.1.1 mailbox unavailable (lab rule)"
            return f"{code} {text}"
        try:
            with open(self.rules_file, encoding="utf-8") as handle:
                rules = json.load(handle)
            return rules.get(address.lower())
        except (OSError, ValueError):
            return None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # The plain and implicit-TLS listeners offer PIPELINING (RFC 2920), as Postfix does;
        # the STARTTLS one does not, so that clients' both ways are exercised.
        session.host_name = hostname
        if self.listener != "starttls":
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self.rule_for(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{os.getpid()}-{id(envelope) & 0xFFFF:04x}"
        data = envelope.original_content or b""
        meta = {
            "listener": self.listener,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": getattr(session, "auth_data", None) if session.authenticated else None,
            "tls": session.ssl is not None,
            "size": len(data),
        }
        for suffix, payload in ((".eml", data), (".json", json.dumps(meta).encode())):
            temporary = os.path.join(self.spool, "." + name + suffix)
            with open(temporary, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temporary, os.path.join(self.spool, name + suffix))
        return f"250 2.0.0 OK queued as {name}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", required=True)
    parser.add_argument("--starttls-port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, required=True)
    parser.add_argument("--plain-port", type=int, required=True)
    parser.add_argument("--token-port", type=int, default=31080)
    args = parser.parse_args()

    spool = os.path.join(args.lab, "smtp", "spool")
    os.makedirs(spool, exist_ok=True)
    rules = os.path.join(args.lab, "smtp", "rules.json")
    users = os.path.join(args.lab, "dovecot", "passwd")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(os.path.join(args.lab, "tls", "cert.pem"), os.path.join(args.lab, "tls", "key.pem"))
    authenticator = Authenticator(users)

    def factory(listener, starttls, require_tls_for_auth):
        return lambda: SMTP(
            Handler(spool, rules, listener, args.token_port),
            hostname="smtp.lab.test",
            authenticator=authenticator,
            auth_require_tls=require_tls_for_auth,
            tls_context=context if starttls else None,
            data_size_limit=64 * 1024 * 1024,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # aiosmtpd counts only STARTTLS as TLS, so the implicit-TLS listener must not demand it for AUTH.
    loop.run_until_complete(loop.create_server(factory("starttls", True, True), "127.0.0.1", args.starttls_port))
    loop.run_until_complete(loop.create_server(factory("tls", False, False), "127.0.0.1", args.tls_port, ssl=context))
    loop.run_until_complete(loop.create_server(factory("plain", False, False), "127.0.0.1", args.plain_port))
    print("lab smtp server ready", flush=True)
    loop.run_forever()


if __name__ == "__main__":
    sys.exit(main())
