#!/usr/bin/env python3
"""A WeChat emulator written from ../shared/wechat-api.md alone, independently of src/sandbox.

It plays the parts of WeChat the bridge meets, with the quirks the document describes:

* open.weixin.qq.com (browser pages): /connect/qrconnect (full page and the wxLogin.js iframe,
  login_type=jssdk), its QR long-poll, and /connect/oauth2/authorize (Official Account web
  authorization inside WeChat's browser), with their HTML error pages (10003-10016).
* api.weixin.qq.com: sns/oauth2/access_token, sns/oauth2/refresh_token, sns/auth, sns/userinfo,
  sns/jscode2session, cgi-bin/token, cgi-bin/stable_token, wxa/checksession and
  wxa/business/getuserphonenumber.
* thirdwx.qlogo.cn: avatar images (headimgurl).

Wire conventions (section 1): every API answer is HTTP 200, business errors included, as
{"errcode":N,"errmsg":"..., rid: ..."}; success bodies carry no errcode except where section 1.3
lists one; JSON is served as text/plain (switchable); "/" is escaped as "\\/"; non-ASCII is raw
UTF-8; optional fields are omitted, not blank.

Deliberate departures, for running on a test machine: plain HTTP on loopback (real WeChat is HTTPS
only, 43003); one origin for all of WeChat's hosts; the long-poll answers at once instead of holding
the request; and the Official Account "no port in redirect_uri" rule (10003) can be switched off
(setting allow_redirect_port) because a test cannot bind port 80. Encrypted open data (section 10)
is not produced: AES needs a package outside the standard library.

Control API, under /_control/ only (never a WeChat path); JSON in and out:
  POST  /_control/users                  {nickname, avatar?, snapshot?, blocked?}  -> person
  GET   /_control/users/<id>             PATCH the same with {nickname?, avatar?, snapshot?, blocked?}
  POST  /_control/apps                   {appid, secret, kind, open_platform?, domains?}
  PATCH /_control/apps/<appid>           {open_platform?, domains?} (bind/unbind, as in the console)
  GET   /_control/settings               PATCH the same with any of DEFAULT_SETTINGS' keys
  POST  /_control/clock                  {advance: seconds}: WeChat's clock moves on (expiries)
  POST  /_control/qr/scan                {uuid, user, decision: allow|deny}: the phone scans and
                                         decides; answers {wx_errcode, redirect} (redirect: where
                                         the QR page then sends the browser, or null)
  GET   /_control/wechat-browser?user=ID this browser becomes WeChat's in-app browser of that person
                                         (a cookie on /connect)
  POST  /_control/mini-program/login     {appid, user, rotate?} -> {code}  (wx.login)
  POST  /_control/mini-program/phone-code {appid, user, countryCode?, purePhoneNumber?} -> {code, ...}
  POST  /_control/faults                 {api, errcode, times?}: the next calls of api answer errcode
  GET   /_control/calls                  every API call so far: {api, appid, errcode} (no secrets)
  GET   /_control/issued                 every code, token and session key issued (for leak checks)

Started as: python3 wechat_emulator.py --port N [--host 127.0.0.1]; apps from the environment
variable WECHAT_EMULATOR_APPS (a JSON list). Prints "wechat emulator listening on HOST:PORT".
Never prints a secret, code or token (request lines, which carry them in the query, are not logged).
"""

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import string
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --------------------------------------------------------------------------------------------
# Settings (PATCH /_control/settings)

DEFAULT_SETTINGS = {
    # Section 1.4: JSON served as text/plain; "application/json; charset=utf-8" is the other form seen.
    "content_type": "text/plain",
    # Section 2 / 3 "User deny", DISAGREE: the 2022 doc copy says no redirect at all ("no_redirect",
    # the default: the current wording); older copies redirect with the state only ("state_only").
    "deny_mode": "no_redirect",
    # Section 3 "Double callback": WeChat's own servers fetch the redirect_uri a second time, with the
    # same code and without the person's cookies.
    "deliver_twice": False,
    # Section 3: a redirect_uri naming a port is refused with 10003. True only lets a test on a
    # loopback port through (a departure from WeChat, see the module docstring).
    "allow_redirect_port": False,
    # Section 12, DISAGREE: "always" = current doc (code2Session names the unionid of a bound mini
    # program without more); "legacy" = the pre-2020 rule (only once the person authorized another
    # app of the same Open Platform account, here a website or Official Account userinfo login).
    "mp_unionid": "always",
    # Section 10.1, DISAGREE: the example sends countryCode as the number 86, the table as a string.
    "phone_country_code": "number",
}

# Lifetimes, seconds.
WEBSITE_CODE_TTL = 600  # section 2: "code 的超时时间为 10 分钟"
OA_CODE_TTL = 300  # section 3: "5分钟未被使用自动过期"
JS_CODE_TTL = 300  # section 8: wx.login code "有效期五分钟"
PHONE_CODE_TTL = 300  # section 10.1: "code的有效期为5min"
USER_TOKEN_TTL = 7200  # section 4: expires_in 7200
REFRESH_TOKEN_TTL = 30 * 86400  # section 5: 30 days, not extended
APP_TOKEN_TTL = 7200  # section 11
APP_TOKEN_OVERLAP = 300  # section 11: old and new both valid for 5 minutes
STABLE_FORCE_MIN_INTERVAL = 30  # section 11: force_refresh at least 30 s apart, else "不会刷新"
# Not documented: how long a QR code of the login page stays scannable before the page shows 402
# (expired). Five minutes, about what the real page does before asking to refresh.
QR_TTL = 300

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40030: "invalid refresh_token",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "code blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41003: "refresh_token missing",
    41004: "appsecret missing",
    41008: "missing code",
    41009: "missing openid",
    42001: "access_token expired",
    42002: "refresh_token expired",
    43002: "require POST method",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    87008: "invalid sig_method",
    87009: "invalid signature",
}

# The OA error pages (section 3 "Error pages"): HTML shown to the person, never JSON.
OA_ERROR_PAGES = {
    10003: "redirect_uri域名与后台配置不一致",
    10004: "此公众号被封禁",
    10005: "此公众号并没有这些scope的权限",
    10009: "操作太频繁了",
    10010: "scope不能为空",
    10011: "redirect_uri不能为空",
    10012: "appid不能为空",
    10013: "state不能为空",
    10016: "不支持微信开放平台的Appid",
}

ALNUM = string.ascii_letters + string.digits
OPENID_CHARS = ALNUM + "-_"


def random_alnum(length):
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def random_openid():
    # Real openids/unionids: 28 characters, "o" then letters, digits, "-" and "_"
    # (o6_bmasdasdsad6_2sgVt7hMZOPfL in the doc's examples).
    return "o" + "".join(secrets.choice(OPENID_CHARS) for _ in range(27))


def rid():
    # Section 1.6: errmsg carries ", rid: 6270dbb5-47d9f324-018472b7".
    return "-".join(secrets.token_hex(4) for _ in range(3))


def wechat_json(value):
    """Section 1.5: raw UTF-8, "/" escaped as "\\/" (only strings contain "/" in JSON)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def png(rgb, size=4):
    """A tiny solid PNG (avatars and the QR placeholder)."""
    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def with_query(uri, params):
    """Section 2 "Success": code and state are appended with "&" when redirect_uri already has a
    query, and inserted before a "#fragment" when it has one."""
    base, hash_mark, fragment = uri.partition("#")
    separator = "&" if "?" in base else "?"
    query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params)
    return f"{base}{separator}{query}{hash_mark}{fragment}"


class ApiError(Exception):
    def __init__(self, errcode):
        super().__init__(errcode)
        self.errcode = errcode


class State:
    """Everything WeChat remembers. One lock: the emulator serves tests, not traffic."""

    def __init__(self, apps):
        self.lock = threading.RLock()
        self.settings = dict(DEFAULT_SETTINGS)
        self.clock_offset = 0.0
        self.apps = {}
        for app in apps:
            self.add_app(app)
        self.users = {}
        self.openids = {}  # (appid, user id) -> openid
        self.openid_owner = {}  # (appid, openid) -> user id
        self.unionids = {}  # (open platform, user id) -> unionid
        self.snapshot_ids = {}  # (appid or platform, user id) -> virtual id (section 3.1)
        self.authorized_platforms = set()  # (open platform, user id): the legacy unionid rule
        self.codes = {}  # oauth codes, wx.login codes and phone codes
        self.user_tokens = {}
        self.refresh_tokens = {}
        self.session_keys = {}  # (appid, user id) -> session_key: one valid key at a time (section 8)
        self.app_tokens = {}  # token -> {appid, expires}
        self.stable = {}  # appid -> {token, expires, forced_at}
        self.qr = {}  # uuid -> QR login
        self.faults = []
        self.calls = []
        self.issued = {"codes": [], "access_tokens": [], "refresh_tokens": [], "session_keys": [], "app_tokens": []}

    def now(self):
        return time.time() + self.clock_offset

    def add_app(self, app):
        kind = app.get("kind")
        if kind not in ("website", "official_account", "mini_program"):
            raise ValueError("kind must be website, official_account or mini_program")
        if not app.get("appid") or not app.get("secret"):
            raise ValueError("appid and secret are required")
        self.apps[app["appid"]] = {
            "appid": app["appid"],
            "secret": app["secret"],
            "kind": kind,
            "name": app.get("name", app["appid"]),
            # The Open Platform account the app is bound to (section 12); None: not bound, no unionid.
            "open_platform": app.get("open_platform"),
            # 授权回调域 / 网页授权域名: the hosts redirect_uri may name.
            "domains": [d.lower() for d in app.get("domains", ["127.0.0.1", "localhost"])],
        }

    # -- people ------------------------------------------------------------------------------

    def openid(self, appid, user_id):
        key = (appid, user_id)
        if key not in self.openids:
            value = random_openid()
            self.openids[key] = value
            self.openid_owner[(appid, value)] = user_id
        return self.openids[key]

    def unionid(self, platform, user_id):
        key = (platform, user_id)
        if key not in self.unionids:
            self.unionids[key] = random_openid()
        return self.unionids[key]

    def snapshot_id(self, scope, user_id):
        key = (scope, user_id)
        if key not in self.snapshot_ids:
            self.snapshot_ids[key] = random_openid()
        return self.snapshot_ids[key]

    def person(self, user):
        platforms = sorted({a["open_platform"] for a in self.apps.values() if a["open_platform"]})
        unionids = {p: self.unionid(p, user["id"]) for p in platforms}
        return {
            "id": user["id"],
            "nickname": user["nickname"],
            "unionid": unionids[platforms[0]] if platforms else None,
            "unionids": unionids,
            "openids": {appid: self.openid(appid, user["id"]) for appid in self.apps},
            "headimgurl": self.headimgurl(user),
            "snapshot": user["snapshot"],
            "blocked": user["blocked"],
        }

    def headimgurl(self, user):
        # Section 7: "" without an avatar; the last path segment is the size (132 here).
        if not user["avatar"]:
            return ""
        return f"{self.public_url}/mmopen/vi_32/{user['avatar_id']}/132"

    # -- codes and tokens --------------------------------------------------------------------

    def issue_code(self, kind, appid, user_id, ttl, **extra):
        # Section 15: opaque ~32-character codes, bound to the appid.
        code = random_alnum(32)
        self.codes[code] = {"kind": kind, "appid": appid, "user": user_id, "expires": self.now() + ttl, "used": False, **extra}
        self.issued["codes"].append(code)
        return code

    def spend_code(self, kind, appid, code):
        """Section 4/8: unknown, expired or another app's code -> 40029; a second use -> 40163."""
        entry = self.codes.get(code)
        if entry is None or entry["kind"] != kind or entry["appid"] != appid:
            raise ApiError(40029)
        if entry["used"]:
            raise ApiError(40163)
        if self.now() >= entry["expires"]:
            # Section 4: expiry "usually shows as 40029" (42003's wording is unconfirmed).
            raise ApiError(40029)
        entry["used"] = True
        return entry

    def token(self, length=110):
        # Section 4: reserve >= 512 characters; real ones are ~100+ characters of [A-Za-z0-9_-].
        return "".join(secrets.choice(OPENID_CHARS) for _ in range(length))

    def app_token(self, appid):
        token = self.token(136)
        self.app_tokens[token] = {"appid": appid, "expires": self.now() + APP_TOKEN_TTL}
        self.issued["app_tokens"].append(token)
        return token

    def check_app_token(self, query):
        return self.apps[live_token(self, self.app_tokens, query)["appid"]]

    def check_app(self, query, secret_errcode=40125):
        appid = query.get("appid", "")
        if appid == "":
            raise ApiError(41002)
        secret = query.get("secret", "")
        if secret == "":
            raise ApiError(41004)
        app = self.apps.get(appid)
        if app is None:
            raise ApiError(40013)
        if not hmac.compare_digest(secret.encode(), app["secret"].encode()):
            raise ApiError(secret_errcode)
        return app


# --------------------------------------------------------------------------------------------
# The API (api.weixin.qq.com)


def api_sns_access_token(state, query, body):
    """Section 4: GET sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code."""
    app = state.check_app(query)
    if query.get("code", "") == "":
        raise ApiError(41008)
    if query.get("grant_type") != "authorization_code":
        raise ApiError(40002)
    entry = state.spend_code("oauth", app["appid"], query["code"])
    user_id = entry["user"]
    snapshot = entry.get("snapshot", False)
    openid = state.snapshot_id(app["appid"], user_id) if snapshot else state.openid(app["appid"], user_id)
    access_token = state.token()
    refresh_token = state.token()
    record = {
        "appid": app["appid"],
        "user": user_id,
        "openid": openid,
        "scope": entry["scope"],
        "snapshot": snapshot,
        "expires": state.now() + USER_TOKEN_TTL,
    }
    state.user_tokens[access_token] = record
    state.refresh_tokens[refresh_token] = {
        "access_token": access_token,
        "appid": app["appid"],
        "expires": state.now() + REFRESH_TOKEN_TTL,
    }
    state.issued["access_tokens"].append(access_token)
    state.issued["refresh_tokens"].append(refresh_token)
    answer = {
        "access_token": access_token,
        "expires_in": USER_TOKEN_TTL,
        "refresh_token": refresh_token,
        "openid": openid,
        "scope": entry["scope"],
    }
    # Section 12: only for a bound app; OA only with snsapi_userinfo ("只有当scope为 snsapi_userinfo
    # 时返回"); a website app has the userinfo authorization by snsapi_login.
    platform = app["open_platform"]
    if platform and entry["scope"] in ("snsapi_login", "snsapi_userinfo"):
        answer["unionid"] = state.snapshot_id(platform, user_id) if snapshot else state.unionid(platform, user_id)
        if not snapshot:
            state.authorized_platforms.add((platform, user_id))
    if snapshot:
        answer["is_snapshotuser"] = 1  # Section 3.1; omitted for everyone else (section 1.7).
    return answer


def api_sns_refresh_token(state, query, body):
    """Section 5: no secret; an unexpired access token is kept and extended; the refresh token is not."""
    appid = query.get("appid", "")
    if appid == "":
        raise ApiError(41002)
    if appid not in state.apps:
        raise ApiError(40013)
    if query.get("grant_type") != "refresh_token":
        raise ApiError(40002)
    refresh_token = query.get("refresh_token", "")
    if refresh_token == "":
        raise ApiError(41003)
    entry = state.refresh_tokens.get(refresh_token)
    if entry is None or entry["appid"] != appid:
        raise ApiError(40030)
    if state.now() >= entry["expires"]:
        raise ApiError(42002)
    old = state.user_tokens[entry["access_token"]]
    if state.now() < old["expires"]:
        access_token = entry["access_token"]
    else:
        access_token = state.token()
        state.user_tokens[access_token] = dict(old)
        del state.user_tokens[entry["access_token"]]
        entry["access_token"] = access_token
        state.issued["access_tokens"].append(access_token)
    record = state.user_tokens[access_token]
    record["expires"] = state.now() + USER_TOKEN_TTL
    return {
        "access_token": access_token,
        "expires_in": USER_TOKEN_TTL,
        "refresh_token": refresh_token,
        "openid": record["openid"],
        "scope": record["scope"],
    }


def user_token(state, query):
    return live_token(state, state.user_tokens, query)


def live_token(state, tokens, query):
    """The record of the query's access_token in `tokens` (an app's or a person's), or WeChat's error:
    41001 missing, 40001 unknown, 42001 expired."""
    token = query.get("access_token", "")
    if token == "":
        raise ApiError(41001)
    record = tokens.get(token)
    if record is None:
        # Section 6/7: "40001/40014 bad token"; the exact choice is unconfirmed: 40001, whose errmsg
        # ("invalid credential") the common table gives.
        raise ApiError(40001)
    if state.now() >= record["expires"]:
        raise ApiError(42001)
    return record


def api_sns_auth(state, query, body):
    """Section 6: {"errcode":0,"errmsg":"ok"} (one of the APIs that say errcode 0 on success)."""
    record = user_token(state, query)
    if query.get("openid", "") != record["openid"]:
        raise ApiError(40003)
    return {"errcode": 0, "errmsg": "ok"}


def api_sns_userinfo(state, query, body):
    """Section 7: the post-2021 profile; 48001 for snsapi_base and snapshot tokens."""
    record = user_token(state, query)
    openid = query.get("openid", "")
    if openid == "":
        raise ApiError(41009)
    if openid != record["openid"]:
        raise ApiError(40003)
    if record["scope"] not in ("snsapi_userinfo", "snsapi_login") or record["snapshot"]:
        raise ApiError(48001)
    user = state.users[record["user"]]
    app = state.apps[record["appid"]]
    # Field order of real captures; sex and location blanked since 2021 (ANN21), language
    # undocumented but present.
    answer = {
        "openid": openid,
        "nickname": user["nickname"],
        "sex": 0,
        "language": "zh_CN",
        "city": "",
        "province": "",
        "country": "",
        "headimgurl": state.headimgurl(user),
        "privilege": [],
    }
    if app["open_platform"]:
        answer["unionid"] = state.unionid(app["open_platform"], record["user"])
    return answer


def api_jscode2session(state, query, body):
    """Section 8: code2Session."""
    app = state.check_app(query)
    if app["kind"] != "mini_program":
        # Not documented; WeChat knows the appid but not as a mini program: 40013 "invalid appid".
        raise ApiError(40013)
    if query.get("js_code", "") == "":
        raise ApiError(41008)
    if query.get("grant_type") != "authorization_code":
        raise ApiError(40002)
    entry = state.spend_code("js", app["appid"], query["js_code"])
    user_id = entry["user"]
    if state.users[user_id]["blocked"]:
        raise ApiError(40226)
    key = (app["appid"], user_id)
    answer = {"session_key": state.session_keys[key], "openid": state.openid(app["appid"], user_id)}
    platform = app["open_platform"]
    if platform and (state.settings["mp_unionid"] == "always" or (platform, user_id) in state.authorized_platforms):
        answer["unionid"] = state.unionid(platform, user_id)
    return answer


def api_cgi_token(state, query, body):
    """Section 11: each call rotates; the previous token keeps working for 5 more minutes."""
    if query.get("grant_type") != "client_credential":
        raise ApiError(40002)
    app = state.check_app(query, secret_errcode=40001)
    for entry in state.app_tokens.values():
        if entry["appid"] == app["appid"] and not entry.get("stable"):
            entry["expires"] = min(entry["expires"], state.now() + APP_TOKEN_OVERLAP)
    return {"access_token": state.app_token(app["appid"]), "expires_in": APP_TOKEN_TTL}


def api_stable_token(state, query, body):
    """Section 11: POST JSON only; the same token while valid, pre-rotated 5 minutes before expiry;
    force_refresh rotates at once (at least 30 s apart); isolated from cgi-bin/token."""
    if body is None:
        raise ApiError(43002)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(47001)
    if not isinstance(data, dict):
        raise ApiError(47001)
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    if fields.get("grant_type") != "client_credential":
        raise ApiError(40002)
    # Not documented which errcode a wrong secret gets here; 40125 "invalid appsecret", as captured
    # for the other AppSecret-bearing calls.
    app = state.check_app(fields)
    # force_refresh is a JSON boolean in the doc; anything else counts as false (emulator choice).
    force = data.get("force_refresh") is True
    now = state.now()
    current = state.stable.get(app["appid"])
    usable = current is not None and now < state.app_tokens.get(current["token"], {"expires": 0})["expires"]
    if usable and force and now - current["forced_at"] >= STABLE_FORCE_MIN_INTERVAL:
        state.app_tokens.pop(current["token"], None)
        usable = False
    if not usable or state.app_tokens[current["token"]]["expires"] - now <= APP_TOKEN_OVERLAP:
        token = state.app_token(app["appid"])
        state.app_tokens[token]["stable"] = True
        current = {"token": token, "forced_at": now if force else (current or {}).get("forced_at", -1e12)}
        state.stable[app["appid"]] = current
    remaining = int(state.app_tokens[current["token"]]["expires"] - now)
    return {"access_token": current["token"], "expires_in": remaining}


def api_checksession(state, query, body):
    """Section 9: HMAC-SHA256 keyed by the session_key's base64 text, over "" (GET), lowercase hex."""
    app = state.check_app_token(query)
    if query.get("sig_method") != "hmac_sha256":
        raise ApiError(87008)
    openid = query.get("openid", "")
    user_id = state.openid_owner.get((app["appid"], openid))
    if user_id is None:
        raise ApiError(40003)
    key = state.session_keys.get((app["appid"], user_id))
    expected = hmac.new(key.encode("utf-8"), b"", hashlib.sha256).hexdigest() if key else ""
    # Whether WeChat accepts uppercase hex is unconfirmed (section 14.13): only lowercase here.
    if not key or not hmac.compare_digest(expected, query.get("signature", "")):
        raise ApiError(87009)
    return {"errcode": 0, "errmsg": "ok"}


def api_phone_number(state, query, body):
    """Section 10.1: POST JSON {"code", "openid"?} with the app access token."""
    if body is None:
        raise ApiError(43002)
    app = state.check_app_token(query)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(47001)
    if not isinstance(data, dict):
        raise ApiError(47001)
    code = data.get("code")
    if not isinstance(code, str) or code == "":
        raise ApiError(41008)
    entry = state.spend_code("phone", app["appid"], code)
    # "填入后会校验openid和code的绑定关系": the errcode of a mismatch is not documented; 40003
    # "invalid openid" (the common table's "openid wrong/belongs to another app").
    openid = data.get("openid")
    if openid is not None and openid != state.openid(app["appid"], entry["user"]):
        raise ApiError(40003)
    country = entry["countryCode"]
    pure = entry["purePhoneNumber"]
    return {
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            # "国外手机号会有区号": the prefix only outside mainland China.
            "phoneNumber": pure if country == "86" else f"+{country}{pure}",
            "purePhoneNumber": pure,
            "countryCode": int(country) if state.settings["phone_country_code"] == "number" else country,
            "watermark": {"timestamp": int(state.now()), "appid": app["appid"]},
        },
    }


API = {
    # path: (handler, method)
    "/sns/oauth2/access_token": (api_sns_access_token, "GET"),
    "/sns/oauth2/refresh_token": (api_sns_refresh_token, "GET"),
    "/sns/auth": (api_sns_auth, "GET"),
    "/sns/userinfo": (api_sns_userinfo, "GET"),
    "/sns/jscode2session": (api_jscode2session, "GET"),
    "/cgi-bin/token": (api_cgi_token, "GET"),
    "/cgi-bin/stable_token": (api_stable_token, "POST"),
    "/wxa/checksession": (api_checksession, "GET"),
    "/wxa/business/getuserphonenumber": (api_phone_number, "POST"),
}


# --------------------------------------------------------------------------------------------
# Pages (open.weixin.qq.com)

PAGE_STYLE = "body{font-family:sans-serif;text-align:center;margin-top:40px;color:#353535}"


def page(title, body):
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def error_page(errcode, text):
    """Section 3 "Error pages": HTML, HTTP 200, the code and its wording (never JSON)."""
    code = f'<p class="wx-errcode" id="wx-errcode">{errcode}</p>' if errcode else ""
    return page("微信网页授权", f'<h2 id="wx-error">{html.escape(text)}</h2>{code}')


def redirect_ok(state, app, uri):
    """Section 2: the host must equal the app's 授权回调域; section 3: for an Official Account, exactly
    the 网页授权域名 and no port (10003)."""
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname.lower() not in app["domains"]:
        return False
    if app["kind"] == "official_account" and port is not None and not state.settings["allow_redirect_port"]:
        return False
    # Website apps: the document compares the host only; a port is let through (emulator choice).
    return True


def qrconnect(state, query):
    """Section 2 / 2.1: the QR login page, full page or wxLogin.js's iframe (login_type=jssdk)."""
    app = state.apps.get(query.get("appid", ""))
    if app is None:
        return error_page(None, "AppID参数错误")  # wording not documented
    jssdk = query.get("login_type") == "jssdk"
    # wxLogin.js's iframe URL carries no response_type: only the full page is held to it.
    if not jssdk and query.get("response_type") != "code":
        return error_page(None, "response_type参数错误")  # wording not documented
    scopes = [s for s in query.get("scope", "").split(",") if s]
    if app["kind"] != "website" or "snsapi_login" not in scopes:
        return error_page(10005, "Scope 参数错误或没有 Scope 权限")
    uri = query.get("redirect_uri", "")
    if not redirect_ok(state, app, uri):
        return error_page(None, "redirect_uri 参数错误")
    uuid = random_alnum(16)
    state.qr[uuid] = {
        "appid": app["appid"],
        "redirect_uri": uri,
        "state": query.get("state", ""),
        "self_redirect": query.get("self_redirect", "default"),
        "status": 408,
        "code": None,
        "redirect": None,
        "expires": state.now() + QR_TTL,
    }
    english = query.get("lang") == "en"
    title = "WeChat Login" if english else "微信登录"
    hint = "Scan with WeChat to log in" if english else "使用微信扫一扫登录"
    target = "window" if query.get("self_redirect") == "true" else "window.top"
    # The page polls (section 2.1's lp.open.weixin.qq.com, here on this origin) and, once confirmed,
    # goes where the poll says (the emulator computes the redirect, as wx_redirecturl variants do).
    script = (
        "(function poll(){var s=document.createElement('script');"
        f"s.src='/connect/l/qrconnect?uuid={uuid}&_='+Date.now();"
        "s.onload=function(){if(window.wx_errcode==405&&window.wx_redirecturl){"
        f"{target}.location.href=window.wx_redirecturl;}}else if(window.wx_errcode==408||window.wx_errcode==404)"
        "{setTimeout(poll,1000);}};document.body.appendChild(s);})();"
    )
    body = (
        f"<h3>{html.escape(title)}</h3>"
        f'<img id="wx-qrcode" data-uuid="{uuid}" src="/connect/qrcode/{uuid}" width="200" height="200" alt="QR">'
        f"<p>{html.escape(hint)}</p><script>{script}</script>"
    )
    return page(title, body)


def qr_poll(state, query):
    """Section 2.1 internals: window.wx_errcode 408 waiting, 404 scanned, 405 confirmed, 403
    cancelled, 402 expired."""
    entry = state.qr.get(query.get("uuid", ""))
    if entry is None or (entry["status"] in (408, 404) and state.now() >= entry["expires"]):
        return "window.wx_errcode=402;window.wx_code='';"
    text = f"window.wx_errcode={entry['status']};window.wx_code='{entry['code'] or ''}';"
    if entry["redirect"]:
        text += f"window.wx_redirecturl={json.dumps(entry['redirect'])};"
    return text


def qr_decide(state, uuid, user_id, decision):
    entry = state.qr.get(uuid)
    if entry is None or (entry["status"] in (408, 404) and state.now() >= entry["expires"]):
        return {"wx_errcode": 402, "redirect": None}
    if entry["status"] not in (408, 404):
        # Already confirmed or cancelled: a QR code serves one login.
        return {"wx_errcode": entry["status"], "redirect": None}
    if decision == "deny":
        entry["status"] = 403
        if state.settings["deny_mode"] == "state_only":
            entry["redirect"] = with_query(entry["redirect_uri"], [("state", entry["state"])])
        return {"wx_errcode": 403, "redirect": entry["redirect"]}
    code = state.issue_code("oauth", entry["appid"], user_id, WEBSITE_CODE_TTL, scope="snsapi_login")
    entry.update(status=405, code=code, redirect=with_query(entry["redirect_uri"], [("code", code), ("state", entry["state"])]))
    deliver_copy(state, entry["redirect"])
    return {"wx_errcode": 405, "redirect": entry["redirect"]}


def deliver_copy(state, url):
    """Section 3 "Double callback": WeChat's servers fetch the same URL, without the person's cookies."""
    if not state.settings["deliver_twice"]:
        return

    def fetch():
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (WeChat emulator copy)"})
            urllib.request.urlopen(request, timeout=10).read()
        except Exception:  # noqa: BLE001 - an answer the copy does not care about
            pass

    threading.Thread(target=fetch, daemon=True).start()


BROWSER_COOKIE = "wx_emulator_user"


def oauth2_authorize(state, query, user_agent, cookie_user, raw_query):
    """Section 3: returns (status, headers, html)."""
    ua = user_agent.lower()
    # Outside WeChat (and in WeCom): 200, a page that says to open the link in WeChat.
    if "micromessenger" not in ua or "wxwork" in ua:
        return 200, {}, page("微信网页授权", '<h2 id="wx-open-in-wechat">请在微信客户端打开链接</h2>')
    # Community capture: WeChat adds connect_redirect=1 with a 301 on the authorize URL.
    if "connect_redirect" not in query:
        location = f"/connect/oauth2/authorize?{raw_query}&connect_redirect=1#wechat_redirect"
        return 301, {"Location": location}, ""
    appid = query.get("appid", "")
    if appid == "":
        return 200, {}, error_page(10012, OA_ERROR_PAGES[10012])
    if query.get("redirect_uri", "") == "":
        return 200, {}, error_page(10011, OA_ERROR_PAGES[10011])
    if query.get("scope", "") == "":
        return 200, {}, error_page(10010, OA_ERROR_PAGES[10010])
    state_param = query.get("state", "")
    if state_param == "":
        return 200, {}, error_page(10013, OA_ERROR_PAGES[10013])
    # "a-zA-Z0-9 的参数值，最多 128 字节": what WeChat does with another state is not documented; the
    # emulator refuses it, so that a client breaking the rule finds out here.
    if len(state_param.encode()) > 128 or any(c not in ALNUM for c in state_param):
        return 200, {}, error_page(None, "state参数错误")
    app = state.apps.get(appid)
    if app is None:
        return 200, {}, error_page(None, "appid参数错误")  # not documented
    if app["kind"] != "official_account":
        # 10016 is documented for Open Platform (website, mobile) appids; a mini program's is refused
        # the same way here (emulator choice).
        return 200, {}, error_page(10016, OA_ERROR_PAGES[10016])
    scope = query["scope"]
    if scope not in ("snsapi_base", "snsapi_userinfo"):
        return 200, {}, error_page(10005, OA_ERROR_PAGES[10005])
    if query.get("response_type") != "code":
        return 200, {}, error_page(None, "response_type参数错误")  # not documented
    if not redirect_ok(state, app, query["redirect_uri"]):
        return 200, {}, error_page(10003, OA_ERROR_PAGES[10003])
    user = state.users.get(cookie_user or "")
    if user is None:
        return 400, {}, page("emulator", "<p>This WeChat browser belongs to nobody: GET /_control/wechat-browser?user=ID first.</p>")
    if scope == "snsapi_base":
        # Always silent.
        return 302, {"Location": authorized_redirect(state, app, user, scope, query)}, ""
    # snsapi_userinfo: the consent popup (the follower-from-menu silent case is not modelled, and
    # forcePopup changes nothing since the popup is always shown).
    fields = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
        for name in ("appid", "redirect_uri", "scope", "state")
    )
    name = html.escape(app["name"])
    body = (
        f'<h3>{name} 申请获得以下权限</h3><p>获得你的公开信息（昵称、头像等）</p>'
        f'<form method="post" action="/connect/oauth2/authorize_reply" id="wx-oauth2-form">{fields}'
        '<button type="submit" name="decision" value="allow" id="wx-oauth2-allow">允许</button>'
        '<button type="submit" name="decision" value="deny" id="wx-oauth2-deny">拒绝</button></form>'
    )
    return 200, {}, page("微信网页授权", body)


def authorized_redirect(state, app, user, scope, query):
    # Section 3.1: a person on the snapshot page gets a virtual identity, flagged in the token answer.
    snapshot = user["snapshot"] and scope == "snsapi_userinfo"
    code = state.issue_code("oauth", app["appid"], user["id"], OA_CODE_TTL, scope=scope, snapshot=snapshot)
    url = with_query(query["redirect_uri"], [("code", code), ("state", query["state"])])
    deliver_copy(state, url)
    return url


def oauth2_reply(state, form, cookie_user):
    app = state.apps.get(form.get("appid", ""))
    user = state.users.get(cookie_user or "")
    if app is None or user is None or not redirect_ok(state, app, form.get("redirect_uri", "")):
        return 400, {}, error_page(None, "请求已失效")
    if form.get("decision") != "allow":
        if state.settings["deny_mode"] == "state_only":
            return 302, {"Location": with_query(form["redirect_uri"], [("state", form.get("state", ""))])}, ""
        return 200, {}, page("微信网页授权", '<h2 id="wx-denied">你已拒绝授权</h2>')
    # The popup is only ever shown for snsapi_userinfo.
    return 302, {"Location": authorized_redirect(state, app, user, "snsapi_userinfo", form)}, ""


# --------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "nginx"  # what WeChat's hosts say

    @property
    def state(self):
        return self.server.state

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        # Request lines carry secrets, codes and tokens in their queries: never printed.
        return

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status, body, content_type, headers=None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_html(self, status, body, headers=None):
        self.send(status, body, "text/html; charset=utf-8", {"Cache-Control": "no-store", **(headers or {})})

    def send_control(self, status, value):
        self.send(status, json.dumps(value, ensure_ascii=False), "application/json; charset=utf-8")

    def cookie(self, name):
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return urllib.parse.unquote(value)
        return None

    def dispatch(self, method):
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            body = self.read_body()
            with self.state.lock:
                if path.startswith("/_control/"):
                    return self.control(method, path, query, body)
                if path in API:
                    return self.api(method, path, query, body)
                return self.browser(method, path, query, body, parts.query)
        except Exception as error:  # noqa: BLE001 - a bug of the emulator: say so, keep serving
            print(f"wechat emulator: {type(error).__name__} on {method} {path}", file=sys.stderr, flush=True)
            self.send(500, "emulator error", "text/plain")

    # -- api ---------------------------------------------------------------------------------

    def api(self, method, path, query, body):
        handler, wanted = API[path]
        state = self.state
        appid = query.get("appid", "")
        errcode = 0
        try:
            for fault in state.faults:
                if fault["api"] == path.lstrip("/") and fault["times"] > 0:
                    fault["times"] -= 1
                    raise ApiError(fault["errcode"])
            if wanted == "POST" and method != "POST":
                raise ApiError(43002)
            answer = handler(state, query, body if method == "POST" else None)
        except ApiError as error:
            errcode = error.errcode
            answer = {"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'system error')}, rid: {rid()}"}
        state.calls.append({"api": path.lstrip("/"), "appid": appid, "errcode": errcode})
        # Section 1.2: business errors are HTTP 200 too.
        self.send(200, wechat_json(answer), state.settings["content_type"])

    # -- browser pages ---------------------------------------------------------------------

    def browser(self, method, path, query, body, raw_query):
        state = self.state
        if path == "/connect/qrconnect" and method == "GET":
            return self.send_html(200, qrconnect(state, query))
        if path == "/connect/l/qrconnect" and method == "GET":
            return self.send(200, qr_poll(state, query), "application/javascript", {"Cache-Control": "no-store"})
        if path.startswith("/connect/qrcode/") and method == "GET":
            return self.send(200, png((0, 0, 0), 8), "image/png")
        if path == "/connect/oauth2/authorize" and method == "GET":
            status, headers, text = oauth2_authorize(
                state, query, self.headers.get("User-Agent") or "", self.cookie(BROWSER_COOKIE), raw_query
            )
            return self.send_html(status, text, headers)
        if path == "/connect/oauth2/authorize_reply" and method == "POST":
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
            status, headers, text = oauth2_reply(state, form, self.cookie(BROWSER_COOKIE))
            return self.send_html(status, text, headers)
        if path.startswith("/mmopen/vi_32/") and method == "GET":
            # thirdwx.qlogo.cn: an avatar, coloured by its id.
            segments = path.split("/")
            if len(segments) == 5 and segments[4] in ("0", "46", "64", "96", "132"):
                digest = hashlib.sha256(segments[3].encode()).digest()
                return self.send(200, png(digest[:3]), "image/png", {"Cache-Control": "max-age=86400"})
        self.send(404, "<html><body>404 Not Found</body></html>", "text/html")

    # -- control -----------------------------------------------------------------------------

    def control(self, method, path, query, body):
        state = self.state
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except ValueError:
            return self.send_control(400, {"error": "body is not JSON"})
        segments = path.split("/")[2:]
        try:
            if segments == ["users"] and method == "POST":
                nickname = data.get("nickname")
                if not isinstance(nickname, str) or nickname == "":
                    return self.send_control(400, {"error": "nickname required"})
                user_id = secrets.token_hex(8)
                state.users[user_id] = {
                    "id": user_id,
                    "nickname": nickname,
                    "avatar": data.get("avatar", True) is not False,
                    "avatar_id": secrets.token_urlsafe(24),
                    "snapshot": data.get("snapshot") is True,
                    "blocked": data.get("blocked") is True,
                }
                for appid, app in state.apps.items():
                    if app["kind"] == "mini_program":
                        state.session_keys[(appid, user_id)] = new_session_key(state)
                return self.send_control(201, state.person(state.users[user_id]))
            if len(segments) == 2 and segments[0] == "users" and method in ("GET", "PATCH"):
                user = state.users.get(segments[1])
                if user is None:
                    return self.send_control(404, {"error": "no such user"})
                for field in ("nickname", "avatar", "snapshot", "blocked"):
                    if field in data:
                        user[field] = data[field]
                return self.send_control(200, state.person(user))
            if segments == ["apps"] and method == "POST":
                state.add_app(data)
                return self.send_control(201, {"appid": data["appid"]})
            if len(segments) == 2 and segments[0] == "apps" and method == "PATCH":
                app = state.apps.get(segments[1])
                if app is None:
                    return self.send_control(404, {"error": "no such app"})
                if "open_platform" in data:
                    app["open_platform"] = data["open_platform"]
                if "domains" in data:
                    app["domains"] = [d.lower() for d in data["domains"]]
                return self.send_control(200, {k: v for k, v in app.items() if k != "secret"})
            if segments == ["settings"] and method in ("GET", "PATCH"):
                unknown = set(data) - set(DEFAULT_SETTINGS)
                if unknown:
                    return self.send_control(400, {"error": f"unknown settings {sorted(unknown)}"})
                state.settings.update(data)
                return self.send_control(200, state.settings)
            if segments == ["clock"] and method == "POST":
                state.clock_offset += float(data.get("advance", 0))
                return self.send_control(200, {"now": state.now()})
            if segments == ["qr", "scan"] and method == "POST":
                if data.get("user") not in state.users:
                    return self.send_control(400, {"error": "no such user"})
                decision = data.get("decision", "allow")
                return self.send_control(200, qr_decide(state, data.get("uuid", ""), data["user"], decision))
            if segments == ["wechat-browser"] and method == "GET":
                user_id = query.get("user", "")
                if user_id not in state.users:
                    return self.send_control(400, {"error": "no such user"})
                cookie = f"{BROWSER_COOKIE}={user_id}; Path=/connect; HttpOnly"
                self.send(200, "ok", "text/plain", {"Set-Cookie": cookie})
                return None
            if segments == ["mini-program", "login"] and method == "POST":
                app, user_id = self.mini_program_target(data)
                key = (app["appid"], user_id)
                # Section 8: a new code *may* replace the session key; here only when asked to.
                if data.get("rotate") is True or key not in state.session_keys:
                    state.session_keys[key] = new_session_key(state)
                code = state.issue_code("js", app["appid"], user_id, JS_CODE_TTL)
                return self.send_control(200, {"code": code})
            if segments == ["mini-program", "phone-code"] and method == "POST":
                app, user_id = self.mini_program_target(data)
                country = str(data.get("countryCode", "86"))
                pure = str(data.get("purePhoneNumber", "13800138000"))
                code = state.issue_code(
                    "phone", app["appid"], user_id, PHONE_CODE_TTL, countryCode=country, purePhoneNumber=pure
                )
                return self.send_control(200, {"code": code, "countryCode": country, "purePhoneNumber": pure})
            if segments == ["faults"] and method == "POST":
                state.faults.append({"api": data["api"], "errcode": int(data["errcode"]), "times": int(data.get("times", 1))})
                return self.send_control(200, {"faults": state.faults})
            if segments == ["calls"] and method == "GET":
                return self.send_control(200, {"calls": state.calls})
            if segments == ["issued"] and method == "GET":
                return self.send_control(200, state.issued)
        except (KeyError, ValueError, TypeError) as error:
            return self.send_control(400, {"error": f"bad request: {error}"})
        return self.send_control(404, {"error": "no such control endpoint"})

    def mini_program_target(self, data):
        app = self.state.apps.get(data.get("appid", ""))
        if app is None or app["kind"] != "mini_program":
            raise ValueError("appid is not a mini program")
        if data.get("user") not in self.state.users:
            raise ValueError("no such user")
        return app, data["user"]


def new_session_key(state):
    # Section 8: base64 of 16 random bytes (24 characters, standard alphabet).
    key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
    state.issued["session_keys"].append(key)
    return key


def main():
    parser = argparse.ArgumentParser(description="WeChat emulator (from wechat-api.md)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    apps = json.loads(os.environ.get("WECHAT_EMULATOR_APPS", "[]"))
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = State(apps)
    server.state.public_url = f"http://{args.host}:{server.server_address[1]}"
    print(f"wechat emulator listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
