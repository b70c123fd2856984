"""A business service in Python behind Tongban's gateway, on the standard library only:
registers with the platform's registry, beats every 5 s, verifies the caller context and
answers the envelope. docs/services.md describes the format; this is its executable example.

Environment: TB_ADMIN (https://host:port of the admin listener), TB_ADMIN_TOKEN, TB_ADMIN_CA (PEM
to trust), SERVICE (the registry name), PORT (where to listen, 127.0.0.1)."""
import base64, hashlib, hmac, http.server, json, os, ssl, threading, time, urllib.request

ADMIN, SERVICE, PORT = os.environ["TB_ADMIN"], os.environ["SERVICE"], int(os.environ["PORT"])
TLS = ssl.create_default_context(cafile=os.environ.get("TB_ADMIN_CA"))

def admin(method, path, body=None):
    req = urllib.request.Request(ADMIN + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": "Bearer " + os.environ["TB_ADMIN_TOKEN"], "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, context=TLS))["data"]

KEYS = {k["version"]: bytes.fromhex(k["key"]) for k in admin("GET", f"/api/v1/microservices/{SERVICE}/caller-context-keys")["keys"]}

def caller(header):  # the verifier of docs/services.md
    fmt, version, who, this, tag = header.split(".")
    key = KEYS[int(version)] if fmt == "v1" and version.isdigit() else None
    mac = lambda data: hmac.new(key, data, lambda: hashlib.new("sm3")).digest()
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    if not hmac.compare_digest(b64(mac(mac(f"v1.{version}.{who}".encode()) + b"." + this.encode())), tag):
        raise ValueError("tag")
    part = lambda text: json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    who, this = part(who), part(this)
    if who["svc"] != SERVICE or this["exp"] < time.time() * 1000:
        raise ValueError("another service's, or expired")
    return who

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            who = caller(self.headers.get("X-Tb-Caller", ""))
            status, body = 200, {"code": 0, "data": {"level": who["lvl"], "signed_in": who["sub"] is not None}}
        except Exception:  # no context, a forged one, an unknown key version: not through the gateway
            status, body = 403, {"code": 20001, "msg": "请求未经网关"}
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # the platform logs requests, masked
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
instance = admin("POST", "/api/v1/instances", {"service": SERVICE, "address": f"127.0.0.1:{PORT}"})["id"]
def beat():
    while True:
        time.sleep(5)
        admin("POST", f"/api/v1/instances/{instance}/heartbeats")
threading.Thread(target=beat, daemon=True).start()
print("ready", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:  # Ctrl-C: leave the registry on the way out
    pass
finally:
    admin("DELETE", f"/api/v1/instances/{instance}")
