"""A stub Kubernetes API server for leakhound's cluster tests.

Serves HTTPS on 127.0.0.1 (certificate and key from the test's CA) and
answers GETs of list endpoints in the API's real shapes:

- `/api/v1/<resource>` and `/apis/<group>/<version>/<resource>` list across
  namespaces; `.../namespaces/<ns>/<resource>` lists one namespace;
- `{"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion",
  "continue", "remainingItemCount"}, "items": [...]}`, items without `kind`
  and `apiVersion`, as the API sends them;
- `limit` and `continue` paginate (the token is base64 of JSON, as the API's
  is; a token that does not decode is a 400); `labelSelector` filters
  (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated);
- a request without `Authorization: Bearer <token>` gets a 401 Status, a
  path listed as forbidden a 403 Status, an unknown path a 404 Status.

usage: kube_api.py PORT CERT_DIR STATE_JSON LOG_FILE
STATE_JSON: {"token": "...", "lists": {"/api/v1/secrets": {"kind":
"SecretList", "apiVersion": "v1", "items": [...]}, ...}, "forbidden":
["/apis/apps/v1/daemonsets", ...], "stall": [paths answered only after 30 s], "client_ca": PEM file
(in CERT_DIR) whose client certificates authenticate}.
Each request is appended to LOG_FILE
as one JSON line: {"path", "query", "auth"}.
"""

import base64
import http.server
import json
import re
import ssl
import sys
import threading
import time
import urllib.parse

PORT, CERTS, STATE, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with open(STATE) as f:
    state = json.load(f)
log_lock = threading.Lock()
RV = "48213"

NAMESPACED = re.compile(r"^(/api/v1|/apis/[^/]+/[^/]+)/namespaces/([^/]+)/([^/]+)$")
CLUSTER = re.compile(r"^(/api/v1|/apis/[^/]+/[^/]+)/([^/]+)$")


def status(code, reason, message, details=None):
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return code, body


def selected(item, selector):
    labels = (item.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = re.split("==?", term, maxsplit=1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def answer(path, query, auth, client_cert):
    if auth != "Bearer " + state["token"] and not client_cert:
        return status(401, "Unauthorized", "Unauthorized")
    m = NAMESPACED.match(path)
    ns = None
    if m:
        base, ns, resource = m.group(1), m.group(2), m.group(3)
    else:
        m = CLUSTER.match(path)
        if not m:
            return status(404, "NotFound", "the server could not find the requested resource")
        base, resource = m.group(1), m.group(2)
    key = base + "/" + resource
    group = base.split("/")[2] if base.startswith("/apis/") else ""
    if path in state.get("forbidden", []):
        scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
        res = resource + ("." + group if group else "")
        return status(
            403,
            "Forbidden",
            '%s is forbidden: User "system:serviceaccount:leakhound:leakhound" cannot list '
            'resource "%s" in API group "%s" %s' % (res, resource, group, scope),
            {"group": group, "kind": resource},
        )
    if key not in state["lists"]:
        return status(404, "NotFound", "the server could not find the requested resource")
    lst = state["lists"][key]
    items = [
        i for i in lst["items"]
        if ns is None or (i.get("metadata") or {}).get("namespace") == ns
    ]
    if "labelSelector" in query:
        items = [i for i in items if selected(i, query["labelSelector"])]
    start = 0
    if query.get("continue"):
        try:
            token = json.loads(base64.b64decode(query["continue"], validate=True))
            start = int(token["start"])
            assert token["rv"] == int(RV)
        except Exception:
            return status(400, "BadRequest", "continue key is not valid: bad token")
    limit = int(query.get("limit") or 0)
    end = len(items) if limit <= 0 else min(len(items), start + limit)
    meta = {"resourceVersion": RV}
    if end < len(items):
        token = json.dumps({"v": "meta.k8s.io/v1", "rv": int(RV), "start": end})
        meta["continue"] = base64.b64encode(token.encode()).decode()
        meta["remainingItemCount"] = len(items) - end
    return 200, {
        "kind": lst["kind"],
        "apiVersion": lst["apiVersion"],
        "metadata": meta,
        "items": items[start:end],
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        auth = self.headers.get("Authorization")
        with log_lock, open(LOG, "a") as f:
            f.write(json.dumps({"path": url.path, "query": query,
                                "auth": auth == "Bearer " + state["token"]}) + "\n")
        if url.path in state.get("stall", []):
            # A server that accepted the request and does not answer (for
            # 30 s at most: the test's client gives up long before).
            time.sleep(30)
        # With "client_ca" set, a client certificate the CA signed
        # authenticates as a token does (the handshake verified it).
        client_cert = bool(self.connection.getpeercert())
        code, body = answer(url.path, query, auth, client_cert)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERTS + "/server.pem", CERTS + "/server.key")
if state.get("client_ca"):
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(CERTS + "/" + state["client_ca"])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
