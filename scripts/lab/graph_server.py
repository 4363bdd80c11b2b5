#!/usr/bin/python3
"""The mail lab's Microsoft Graph mail service (Python's standard library only), HTTPS on 127.0.0.1.

Built from Microsoft's documentation of Graph v1.0 mail, as a client meets it:
  GET    /v1.0/users/{u}/mailFolders[/{id|well-known}[/childFolders]]   folders (10 per page)
  GET    /v1.0/users/{u}/mailFolders/{f}/messages/delta    delta rounds: nextLink pages (size from
         `Prefer: odata.maxpagesize=N`, default 10) then a deltaLink; `@removed` for messages
         deleted or moved out; `changeType=created` kept in the tokens; only the newest links of a
         folder stay valid (older ones, and every link after /test/expire-delta, answer 410
         SyncStateNotFound)
  GET    /v1.0/users/{u}/messages/{id}[?$select=…&$expand=singleValueExtendedProperties(…)]
         (the size is the extended property `Integer 0x0E08`)
  GET    /v1.0/users/{u}/messages/{id}/$value               the MIME (text/plain)
  PATCH  /v1.0/users/{u}/messages/{id}                      {"isRead": true}
  POST   /v1.0/users/{u}/messages/{id}/move                 {"destinationId": id or well-known} → 201
  DELETE /v1.0/users/{u}/messages/{id}                      → 204, into deleteditems
  POST   /v1.0/users/{u}/sendMail                           JSON, or the base64 of a MIME message
         (Content-Type: text/plain) → 202; saved in the mailbox's own sentitems unless
         saveToSentItems is false; requests over 4 MB → 413
Ids are immutable with `Prefer: IdType="ImmutableId"`; without it a message's id changes when it
moves (both kinds are accepted). Errors are {"error": {"code", "message", "innerError":
{"request-id", "date"}}} with a `request-id` header.

Tokens are checked by introspection at the lab's token server: a token for another resource
(no graph.microsoft.com in its scope) is 401 InvalidAuthenticationToken. Application tokens
(client credentials) carry the roles and mailbox scope of LAB/graph/apps.json
({"CLIENT": {"roles": ["Mail.Read" | "Mail.ReadWrite" | "Mail.Send"], "mailboxes": ["*" | address]}});
a mailbox outside the scope is 403 ErrorAccessDenied "Access to OData is disabled."; a missing
role is 403 ErrorAccessDenied. A delegated token reaches its own user's mailbox.

Throttling, per application and mailbox: at most 4 requests at once (the fifth is 429
ApplicationThrottled, Retry-After: 1) and `limit` requests per 10 minutes (default 10,000).

Test hooks:
  POST /test/deliver?user=U&folder=F           body: a MIME message → {"id": …}
  POST /test/load?user=U&folder=F&dir=D        every file of the lab machine's directory D (benchmarks)
  POST /test/fault      {"mode": "429"|"503"|"500"|"truncate"|"slow", "count": N,
                         "retry_after": S, "match": "substring of the path" | [substrings, all], "delay": S}
                        (added beside the others; "mode": "none" removes those sharing a substring)
  POST /test/expire-delta?user=U&folder=F      every link of the folder answers 410 from now on
  POST /test/replay?user=U&folder=F            the next delta round of the folder repeats its items
  POST /test/settings   {"limit": N, "concurrency": N, "slow": S}
  POST /test/app        {"client": ID, "roles": […], "mailboxes": […]}
  POST /test/deny?user=U&mode=scope|read-only|none   that mailbox is outside every application's
                         scope, or granted Mail.Read only (application tokens)
  GET  /test/stats      requests by kind, the most in flight per mailbox, 429s served, retries
                        sooner than Retry-After, bytes uploaded
  GET  /test/mailbox?user=U   every folder and message (id, folder, isRead, subject)
  GET  /test/sent?user=U      what sendMail accepted, as MIME (base64) with saveToSentItems
"""
import argparse
import base64
import http.server
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime

LOCK = threading.Lock()
WELL_KNOWN = ["msgfolderroot", "inbox", "archive", "sentitems", "deleteditems", "drafts", "junkemail", "outbox"]
FOLDER_NAMES = {"msgfolderroot": "Top of Information Store", "inbox": "Inbox", "archive": "Archive", "sentitems": "Sent Items",
                "deleteditems": "Deleted Items", "drafts": "Drafts", "junkemail": "Junk Email", "outbox": "Outbox"}
MAILBOXES = {}          # address -> {"folders": {id: folder}, "messages": {immutable id: message}, "sent": [...]}
SETTINGS = {"limit": 10000, "concurrency": 4, "slow": 0.0}
FAULTS = []             # each {"mode", "count", "retry_after", "match": [substrings], "delay"}: the first that fits serves
STATS = {"requests": {}, "max_in_flight": 0, "throttled": 0, "early_retries": 0, "uploaded": 0, "faults": 0}
IN_FLIGHT = {}          # (client, mailbox) -> count
WINDOW = {}             # (client, mailbox) -> [times]
NOT_BEFORE = {}         # (client, mailbox) -> time before which a retry is too early
TOKENS = {}             # access token -> (introspection, checked at)
DENIED = {}             # address -> "scope" (outside every application's scope) | "read-only" (Mail.Read only)
APPS_FILE = None
TOKEN_URL = None
SEQUENCE = [0]


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_id(prefix="AAMkAD"):
    # Case-sensitive base64url, with the characters that tempt a client to re-encode.
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode() + "-_="


def mailbox(address):
    address = address.lower()
    box = MAILBOXES.get(address)
    if box is None:
        folders = {}
        root = {"id": new_id("AQMkAD"), "wellKnown": "msgfolderroot", "displayName": FOLDER_NAMES["msgfolderroot"], "parent": None}
        folders[root["id"]] = root
        for name in WELL_KNOWN[1:]:
            folder = {"id": new_id("AQMkAD"), "wellKnown": name, "displayName": FOLDER_NAMES[name], "parent": root["id"]}
            folders[folder["id"]] = folder
        box = {"folders": folders, "messages": {}, "sent": [], "changes": {}, "generation": {}, "expired": {}, "replay": set(),
               "last_since": {}}
        MAILBOXES[address] = box
    return box


def folder_by(box, reference):
    if reference is None:
        return None
    for folder in box["folders"].values():
        if folder["id"] == reference or folder["wellKnown"] == reference.lower():
            return folder
    return None


def record_change(box, folder_id, message_id, kind):
    SEQUENCE[0] += 1
    box["changes"].setdefault(folder_id, []).append((SEQUENCE[0], kind, message_id))


def text_of(value):
    """A header as sent (8-bit is UTF-8 in the lab's tests; RFC 2047 words decoded), unfolded."""
    from email.header import decode_header, make_header
    if value is None:
        return ""
    if not isinstance(value, str):
        # compat32 hands 8-bit headers over as Header objects of unknown-8bit chunks.
        parts = []
        for chunk, charset in decode_header(value):
            parts.append(chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk)
        return " ".join("".join(parts).split())
    try:
        text = str(make_header(decode_header(value)))
    except (UnicodeError, LookupError, ValueError):
        text = value
    return " ".join(text.split())


def add_message(box, folder, mime, is_read=False):
    parsed = message_from_bytes(mime, policy=policy.compat32)
    try:
        received = parsedate_to_datetime(parsed.get("Date", "")).astimezone().strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        received = now_iso()
    immutable = new_id()
    message = {"id": immutable, "regular": new_id("AAMkAG"), "folder": folder["id"], "mime": mime, "isRead": is_read,
               "receivedDateTime": received, "subject": text_of(parsed.get("Subject")),
               "internetMessageId": text_of(parsed.get("Message-ID")), "from": text_of(parsed.get("From"))}
    box["messages"][immutable] = message
    record_change(box, folder["id"], immutable, "created")
    return message


def representation(message, select, immutable):
    full = {"@odata.type": "#microsoft.graph.message", "@odata.etag": 'W/"' + message["regular"][-12:] + '"',
            "id": message["id"] if immutable else message["regular"], "receivedDateTime": message["receivedDateTime"],
            "isRead": message["isRead"], "subject": message["subject"], "internetMessageId": message["internetMessageId"],
            "parentFolderId": message["folder"], "hasAttachments": False,
            "from": {"emailAddress": {"name": "", "address": message["from"]}}}
    if select:
        keep = set(select) | {"id", "@odata.type", "@odata.etag"}
        full = {key: value for key, value in full.items() if key in keep}
    return full


def token_b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def token_read(text):
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        return None


class Graph(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GraphLab/1.0"

    def setup(self):
        # Headers and body go out in two writes: without TCP_NODELAY the body would wait for
        # the client's delayed ACK (40 ms) on every kept-alive request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with LOCK:
            STATS["connections"] = STATS.get("connections", 0) + 1
        super().setup()

    def log_message(self, fmt, *args):
        if os.environ.get("GRAPH_LAB_QUIET"):
            return
        sys.stderr.write("graph-lab: " + (fmt % args) + "\n")

    # ---- replies ----------------------------------------------------------------------------
    def reply(self, status, body=None, headers=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        request_id = str(uuid.uuid4())
        fault = getattr(self, "fault", "none")
        self.send_response(status)
        self.send_header("request-id", request_id)
        self.send_header("client-request-id", self.headers.get("client-request-id", request_id))
        if data or status not in (202, 204):
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "truncate" and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def error(self, status, code, message, headers=None):
        body = {"error": {"code": code, "message": message,
                          "innerError": {"date": now_iso(), "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}}
        self.reply(status, body, headers)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # ---- dispatch ---------------------------------------------------------------------------
    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def do_PATCH(self):
        self.handle_request("PATCH")

    def do_DELETE(self):
        self.handle_request("DELETE")

    def handle_request(self, method):
        url = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(url.query)
        parts = []
        for part in (urllib.parse.unquote(p) for p in url.path.split("/") if p):
            # The key form links come back in: mailFolders('id') is mailFolders/id.
            if part.endswith("')") and "('" in part:
                name, key = part[:-2].split("('", 1)
                parts += [name, key]
            else:
                parts.append(part)
        if parts[:1] == ["test"]:
            return self.test_hook(method, parts[1:])
        if parts[:2] != ["v1.0", "users"] or len(parts) < 3:
            return self.error(400, "BadRequest", "Resource not found for the segment '" + "/".join(parts[:2]) + "'.")
        if parts[2].lower() == "me":
            return self.error(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        identity = self.authenticate()
        if identity is None:
            return
        address = parts[2].lower()
        key = (identity["client"], address)
        with LOCK:
            # A request that arrives within 0.2 s of the 429 was already on its way: not early.
            issued, until = NOT_BEFORE.get(key, (0, 0))
            too_early = issued + 0.2 < time.time() < until
            if too_early:
                STATS["early_retries"] += 1
            window = [t for t in WINDOW.get(key, []) if t > time.time() - 600]
            window.append(time.time())
            WINDOW[key] = window
            if len(window) > SETTINGS["limit"]:
                STATS["throttled"] += 1
                NOT_BEFORE[key] = (time.time(), time.time() + 5)
                throttled = ("ApplicationThrottled", "Application is over its MailboxRequestLimit.", 5)
            elif IN_FLIGHT.get(key, 0) >= SETTINGS["concurrency"]:
                STATS["throttled"] += 1
                NOT_BEFORE[key] = (time.time(), time.time() + 1)
                throttled = ("ApplicationThrottled", "Application is over its MailboxConcurrency limit.", 1)
            else:
                throttled = None
                IN_FLIGHT[key] = IN_FLIGHT.get(key, 0) + 1
                STATS["max_in_flight"] = max(STATS["max_in_flight"], IN_FLIGHT[key])
            fault = {"mode": "none"}
            if throttled is None:
                for candidate in FAULTS:
                    if candidate["count"] > 0 and all(w in self.path for w in candidate["match"]):
                        candidate["count"] -= 1
                        STATS["faults"] += 1
                        fault = dict(candidate)
                        break
        if throttled:
            code, message, after = throttled
            return self.error(429, code, message, {"Retry-After": str(after)})
        try:
            self.fault = fault["mode"]
            if SETTINGS["slow"]:
                time.sleep(SETTINGS["slow"])
            if fault["mode"] == "500":
                return self.error(500, "InternalServerError", "lab fault")
            if fault["mode"] in ("429", "503"):
                after = int(fault["retry_after"])
                with LOCK:
                    NOT_BEFORE[key] = (time.time(), time.time() + after)
                status = int(fault["mode"])
                code = "ApplicationThrottled" if status == 429 else "ServiceUnavailable"
                return self.error(status, code, "lab fault", {"Retry-After": str(after)})
            if fault["mode"] == "slow":
                time.sleep(float(fault["delay"] or 30))
            kind = self.route(method, parts[3:], identity, address)
            with LOCK:
                STATS["requests"][kind] = STATS["requests"].get(kind, 0) + 1
        finally:
            with LOCK:
                IN_FLIGHT[key] = IN_FLIGHT.get(key, 1) - 1

    # ---- authentication ---------------------------------------------------------------------
    def authenticate(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            self.error(401, "InvalidAuthenticationToken", "Access token is empty.")
            return None
        token = header[7:]
        entry = TOKENS.get(token)
        if entry is None or entry[1] < time.time() - 30:
            try:
                data = urllib.parse.urlencode({"token": token}).encode()
                with urllib.request.urlopen(TOKEN_URL + "/introspect", data, timeout=5) as answer:
                    info = json.load(answer)
            except OSError:
                self.error(503, "ServiceUnavailable", "the lab's token server does not answer")
                return None
            entry = (info, time.time())
            TOKENS[token] = entry
        info = entry[0]
        if not info.get("active"):
            self.error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
            return None
        if "graph.microsoft.com" not in info.get("scope", ""):
            self.error(401, "InvalidAuthenticationToken", "Invalid audience.")
            return None
        apps = load_apps()
        client = info.get("client_id", "")
        if client in apps:
            return {"client": client, "app": True, "roles": set(apps[client].get("roles", [])),
                    "mailboxes": [m.lower() for m in apps[client].get("mailboxes", [])]}
        return {"client": client, "app": False, "user": (info.get("username") or "").lower()}

    def allowed(self, identity, address, need):
        """need: read, write or send. Sends the 403 and returns False when not allowed."""
        denial = DENIED.get(address)
        if identity["app"] and denial == "scope":
            self.error(403, "ErrorAccessDenied", "Access to OData is disabled.")
            return False
        if identity["app"] and denial == "read-only" and need != "read":
            self.error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return False
        if identity["app"]:
            scope = identity["mailboxes"]
            if "*" not in scope and address not in scope:
                self.error(403, "ErrorAccessDenied", "Access to OData is disabled.")
                return False
            roles = identity["roles"]
            granted = {"read": bool(roles & {"Mail.Read", "Mail.ReadWrite"}), "write": "Mail.ReadWrite" in roles, "send": "Mail.Send" in roles}
            if not granted[need]:
                self.error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
                return False
            return True
        user = identity["user"]
        if user != address and user.split("@")[0] != address.split("@")[0]:
            self.error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return False
        return True

    # ---- the API ----------------------------------------------------------------------------
    def route(self, method, rest, identity, address):
        immutable = 'IdType="ImmutableId"' in self.headers.get("Prefer", "")
        with LOCK:
            box = mailbox(address)
        if rest[:1] == ["mailFolders"]:
            if len(rest) >= 4 and rest[2] == "messages" and rest[3] == "delta" and method == "GET":
                if self.allowed(identity, address, "read"):
                    self.delta(box, rest[1], immutable)
                return "delta"
            if method == "GET" and self.allowed(identity, address, "read"):
                self.folders(box, rest[1:])
            return "folders"
        if rest[:1] == ["sendMail"] and method == "POST":
            if self.allowed(identity, address, "send"):
                self.send_mail(box, address)
            return "sendMail"
        if rest[:1] == ["messages"] and len(rest) >= 2:
            need = "read" if method == "GET" else "write"
            if not self.allowed(identity, address, need):
                return "denied"
            with LOCK:
                message = self.find(box, rest[1])
            if message is None:
                self.error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                return "missing"
            if method == "GET" and rest[2:] == ["$value"]:
                self.reply(200, raw=message["mime"], content_type="text/plain")
                return "value"
            if method == "GET" and len(rest) == 2:
                body = representation(message, self.select(), immutable)
                if "singleValueExtendedProperties" in " ".join(self.query.get("$expand", [])):
                    body["singleValueExtendedProperties"] = [{"id": "Integer 0xe08", "value": str(len(message["mime"]))}]
                self.reply(200, body)
                return "get"
            if method == "PATCH" and len(rest) == 2:
                try:
                    change = json.loads(self.body() or b"{}")
                except ValueError:
                    return self.error(400, "RequestBodyRead", "The body is not JSON.") or "bad"
                with LOCK:
                    if "isRead" in change:
                        message["isRead"] = bool(change["isRead"])
                        record_change(box, message["folder"], message["id"], "updated")
                self.reply(200, representation(message, None, immutable))
                return "patch"
            if method == "POST" and rest[2:] == ["move"]:
                try:
                    destination = json.loads(self.body() or b"{}").get("destinationId")
                except ValueError:
                    destination = None
                with LOCK:
                    target = folder_by(box, destination)
                    if target is None:
                        return self.error(404, "ErrorItemNotFound", "The specified folder could not be found in the store.") or "missing"
                    self.move(box, message, target)
                self.reply(201, representation(message, None, immutable))
                return "move"
            if method == "DELETE" and len(rest) == 2:
                with LOCK:
                    self.move(box, message, folder_by(box, "deleteditems"))
                self.reply(204)
                return "delete"
        self.error(400, "BadRequest", "Unsupported request: " + method + " " + "/".join(rest))
        return "unsupported"

    def select(self):
        fields = []
        for value in self.query.get("$select", []):
            fields += [f.strip() for f in value.split(",") if f.strip()]
        return fields

    def find(self, box, reference):
        for message in box["messages"].values():
            if message["id"] == reference or message["regular"] == reference:
                return message
        return None

    def move(self, box, message, target):
        if message["folder"] == target["id"]:
            return
        record_change(box, message["folder"], message["id"], "removed")
        message["folder"] = target["id"]
        message["regular"] = new_id("AAMkAG")   # a regular id changes with the folder
        record_change(box, target["id"], message["id"], "created")

    def folders(self, box, rest):
        def json_of(folder):
            count = sum(1 for m in box["messages"].values() if m["folder"] == folder["id"])
            unread = sum(1 for m in box["messages"].values() if m["folder"] == folder["id"] and not m["isRead"])
            children = sum(1 for f in box["folders"].values() if f["parent"] == folder["id"])
            return {"id": folder["id"], "displayName": folder["displayName"], "parentFolderId": folder["parent"],
                    "childFolderCount": children, "totalItemCount": count, "unreadItemCount": unread, "isHidden": False}
        with LOCK:
            if not rest:
                parent = folder_by(box, "msgfolderroot")
            else:
                parent = folder_by(box, rest[0])
                if parent is None:
                    return self.error(404, "ErrorItemNotFound", "The specified folder could not be found in the store.")
                if len(rest) == 1:
                    return self.reply(200, json_of(parent))
            children = [json_of(f) for f in box["folders"].values() if f["parent"] == parent["id"]]
        skip = int((self.query.get("$skip") or ["0"])[0])
        page = children[skip:skip + 10]
        body = {"value": page}
        if skip + 10 < len(children):
            base = "https://" + self.headers.get("Host", "") + self.path.split("?")[0]
            body["@odata.nextLink"] = base + "?$skip=" + str(skip + 10)
        self.reply(200, body)

    def delta(self, box, folder_reference, immutable):
        host = "https://" + self.headers.get("Host", "")
        with LOCK:
            folder = folder_by(box, folder_reference)
            if folder is None:
                return self.error(404, "ErrorItemNotFound", "The specified folder could not be found in the store.")
            fid = folder["id"]
            generation = box["generation"].get(fid, 0)
            expired = box["expired"].get(fid, -1)
            token = None
            for name in ("$skiptoken", "$deltatoken"):
                if name in self.query:
                    token = token_read(self.query[name][0])
                    if token is None or token.get("f") != fid:
                        return self.error(400, "BadRequest", "The token is not valid.")
            if token is not None and (token["g"] <= expired or generation - token["g"] > 3):
                return self.error(410, "SyncStateNotFound", "The sync state generation is not found or has expired.",
                                  {"Location": f"{host}/v1.0/users/{self.path.split('/')[3]}/mailFolders/{fid}/messages/delta"})
            select = self.select() if token is None else token.get("s", [])
            created_only = token.get("c", False) if token else ("created" in " ".join(self.query.get("changeType", [])))
            prefer = self.headers.get("Prefer", "")
            size = 10
            for part in prefer.replace(";", ",").split(","):
                part = part.strip()
                if part.startswith("odata.maxpagesize="):
                    try:
                        size = max(1, min(int(part.split("=", 1)[1]), 1000))
                    except ValueError:
                        pass
            # The round's window of changes: (since, upto]; a first round is a snapshot.
            since = token.get("since") if token else None
            if token is None or "upto" not in token:
                if since is not None and fid in box["replay"]:
                    box["replay"].discard(fid)
                    since = box["last_since"].get(fid, since)
                upto = SEQUENCE[0]
            else:
                upto = token["upto"]
            items = []
            if since is None:
                for message in box["messages"].values():
                    if message["folder"] == fid:
                        items.append(representation(message, select, immutable))
            else:
                kinds = {}
                for seq, kind, mid in box["changes"].get(fid, []):
                    if since < seq <= upto:
                        kinds.setdefault(mid, set()).add(kind)
                for mid, seen in kinds.items():
                    message = box["messages"].get(mid)
                    present = message is not None and message["folder"] == fid
                    if present and ("created" in seen or ("updated" in seen and not created_only)):
                        items.append(representation(message, select, immutable))
                    elif not present and "removed" in seen and not created_only:
                        items.append({"@odata.type": "#microsoft.graph.message",
                                      "id": mid if immutable or message is None else message["regular"],
                                      "@removed": {"reason": "deleted"}})
            offset = token.get("o", 0) if token else 0
            page = items[offset:offset + size]
            box["generation"][fid] = generation + 1
            state = {"f": fid, "g": generation + 1, "s": select, "c": created_only, "since": since, "upto": upto}
            if offset == 0:
                box["last_since"][fid] = since
            base = f"{host}/v1.0/users/{self.path.split('/')[3]}/mailFolders('{fid}')/messages/delta"
            body = {"@odata.context": f"{host}/v1.0/$metadata#Collection(message)", "value": page}
            if offset + size < len(items):
                state["o"] = offset + size
                body["@odata.nextLink"] = base + "?$skiptoken=" + token_b64(state)
            else:
                body["@odata.deltaLink"] = base + "?$deltatoken=" + token_b64({"f": fid, "g": generation + 1, "s": select,
                                                                                "c": created_only, "since": upto})
        self.reply(200, body)

    def send_mail(self, box, address):
        data = self.body()
        with LOCK:
            STATS["uploaded"] += len(data)
        if len(data) > 4 * 1024 * 1024:
            return self.error(413, "RequestEntityTooLarge", "The request is larger than 4 MB.")
        content_type = self.headers.get("Content-Type", "")
        save = True
        if content_type.startswith("text/plain"):
            try:
                mime = base64.b64decode(data, validate=True)
            except ValueError:
                return self.error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
        else:
            try:
                request = json.loads(data)
                message = request["message"]
            except (ValueError, KeyError, TypeError):
                return self.error(400, "ErrorInvalidRequest", "The body is not a sendMail request.")
            save = request.get("saveToSentItems", True) is not False
            recipients = ", ".join(r["emailAddress"]["address"] for r in message.get("toRecipients", []))
            body = message.get("body", {}).get("content", "")
            mime = (f"From: {address}\r\nTo: {recipients}\r\nSubject: {message.get('subject', '')}\r\n"
                    f"Message-ID: <{uuid.uuid4()}@graph.lab>\r\n\r\n{body}\r\n").encode()
        with LOCK:
            box["sent"].append({"mime": base64.b64encode(mime).decode(), "saveToSentItems": save, "at": time.time()})
            if save:
                add_message(box, folder_by(box, "sentitems"), mime, is_read=True)
        self.reply(202)

    # ---- test hooks -------------------------------------------------------------------------
    def test_hook(self, method, rest):
        name = rest[0] if rest else ""
        query = {k: v[0] for k, v in self.query.items()}
        if name == "deliver" and method == "POST":
            mime = self.body()
            with LOCK:
                box = mailbox(query.get("user", ""))
                folder = folder_by(box, query.get("folder", "inbox"))
                if folder is None:
                    folder = {"id": new_id("AQMkAD"), "wellKnown": "", "displayName": query["folder"],
                              "parent": folder_by(box, "msgfolderroot")["id"]}
                    box["folders"][folder["id"]] = folder
                message = add_message(box, folder, mime, is_read=query.get("read") == "1")
            return self.reply(200, {"id": message["id"]})
        if name == "load" and method == "POST":
            # Every file of a local directory as a message of the folder (benchmarks).
            directory = query.get("dir", "")
            count = 0
            for entry in sorted(os.listdir(directory)):
                with open(os.path.join(directory, entry), "rb") as handle:
                    mime = handle.read()
                with LOCK:
                    box = mailbox(query.get("user", ""))
                    add_message(box, folder_by(box, query.get("folder", "inbox")), mime)
                count += 1
            return self.reply(200, {"loaded": count})
        if name == "folder" and method == "POST":
            with LOCK:
                box = mailbox(query.get("user", ""))
                parent = folder_by(box, query.get("parent", "msgfolderroot"))
                folder = {"id": new_id("AQMkAD"), "wellKnown": "", "displayName": query.get("name", "Folder"), "parent": parent["id"]}
                box["folders"][folder["id"]] = folder
            return self.reply(200, {"id": folder["id"]})
        if name == "fault" and method == "POST":
            # Faults side by side (tests run in parallel): each matches the paths that hold all
            # of its substrings; mode "none" removes those that share one of its substrings (all,
            # without any).
            settings = json.loads(self.body() or b"{}")
            match = settings.get("match", [])
            match = match if isinstance(match, list) else [match]
            with LOCK:
                if settings.get("mode", "none") == "none":
                    FAULTS[:] = [f for f in FAULTS if match and not set(match) & set(f["match"])]
                else:
                    FAULTS.append({"mode": settings["mode"], "count": int(settings.get("count", 1)),
                                   "retry_after": settings.get("retry_after", 1), "match": match, "delay": settings.get("delay", 0)})
                return self.reply(200, FAULTS)
        if name == "settings" and method == "POST":
            with LOCK:
                SETTINGS.update(json.loads(self.body() or b"{}"))
            return self.reply(200, dict(SETTINGS))
        if name == "deny" and method == "POST":
            with LOCK:
                if query.get("mode", "none") == "none":
                    DENIED.pop(query.get("user", "").lower(), None)
                else:
                    DENIED[query.get("user", "").lower()] = query["mode"]
            return self.reply(200, dict(DENIED))
        if name == "app" and method == "POST":
            entry = json.loads(self.body() or b"{}")
            apps = load_apps()
            apps[entry["client"]] = {"roles": entry.get("roles", []), "mailboxes": entry.get("mailboxes", ["*"])}
            with open(APPS_FILE, "w", encoding="utf-8") as handle:
                json.dump(apps, handle, indent=2)
            return self.reply(200, apps)
        if name in ("expire-delta", "replay") and method == "POST":
            with LOCK:
                box = mailbox(query.get("user", ""))
                folder = folder_by(box, query.get("folder", "inbox"))
                if name == "expire-delta":
                    box["expired"][folder["id"]] = box["generation"].get(folder["id"], 0)
                else:
                    box["replay"].add(folder["id"])
            return self.reply(200, {})
        if name == "stats":
            with LOCK:
                return self.reply(200, STATS)
        if name == "reset-stats" and method == "POST":
            with LOCK:
                STATS.update({"requests": {}, "max_in_flight": 0, "throttled": 0, "early_retries": 0, "uploaded": 0, "faults": 0,
                              "connections": 0})
            return self.reply(200, {})
        if name == "mailbox":
            with LOCK:
                box = mailbox(query.get("user", ""))
                folders = {f["id"]: (f["wellKnown"] or f["displayName"]) for f in box["folders"].values()}
                messages = [{"id": m["id"], "folder": folders[m["folder"]], "isRead": m["isRead"], "subject": m["subject"],
                             "internetMessageId": m["internetMessageId"]} for m in box["messages"].values()]
            return self.reply(200, {"folders": sorted(folders.values()), "messages": messages})
        if name == "sent":
            with LOCK:
                return self.reply(200, mailbox(query.get("user", ""))["sent"])
        return self.error(404, "NotFound", "no such test hook")


def load_apps():
    try:
        with open(APPS_FILE, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    global APPS_FILE, TOKEN_URL
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", required=True)
    parser.add_argument("--port", type=int, default=31444)
    parser.add_argument("--token-port", type=int, default=31080)
    args = parser.parse_args()
    os.makedirs(f"{args.lab}/graph", exist_ok=True)
    APPS_FILE = f"{args.lab}/graph/apps.json"
    apps = load_apps()
    for client in ("lab-app", "lab-cert-app"):
        apps.setdefault(client, {"roles": ["Mail.ReadWrite", "Mail.Send"], "mailboxes": ["*"]})
    with open(APPS_FILE, "w", encoding="utf-8") as handle:
        json.dump(apps, handle, indent=2)
    TOKEN_URL = f"http://127.0.0.1:{args.token_port}"
    server = Server(("127.0.0.1", args.port), Graph)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{args.lab}/tls/cert.pem", f"{args.lab}/tls/key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"graph-lab: listening on https://127.0.0.1:{args.port}/v1.0", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
