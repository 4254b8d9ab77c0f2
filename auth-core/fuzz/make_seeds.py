#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (seeds/<target>/) from the test fixtures and the
requests the HTTP contract sends. Deterministic: run it again and the files are the same
(`git status` shows nothing). Needs argon2-cffi and bcrypt for the cheap real hashes
(`pip install argon2-cffi==25.1.0 bcrypt==5.0.0`); the fuzzing itself needs neither.

    python3 auth-core/fuzz/make_seeds.py
"""

import base64
import hashlib
import json
import pathlib
import shutil

import argon2
import bcrypt

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures"
PASSWORD = "correct horse battery staple"


def write(target, seeds):
    folder = HERE / "seeds" / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for seed in seeds:
        data = seed.encode() if isinstance(seed, str) else bytes(seed)
        name = hashlib.sha1(data).hexdigest()
        (folder / name).write_bytes(data)


EMAILS = [
    "ada@example.com", " Ada@Example.COM ", "ada+tag@example.com", "a.d.a@example.co.uk",
    "ümlaut@bücher.de", "user@xn--bcher-kva.de", "\"quoted\"@example.com", ".lead@example.com",
    "trail.@example.com", "a..b@example.com", "@example.com", "ada@", "ada", "a@b@c",
    "ada@[127.0.0.1]", "ada@localhost", "аda@example.com", "ｆｕｌｌ@example.com",
    "x" * 64 + "@example.com", "x" * 65 + "@example.com", "a@" + "b" * 250 + ".com",
    "ada@example.com\r\nBcc: eve@example.com", "ada\u200b@example.com", "ADA@EXAMPLE.COM",
]


def stored_hashes():
    cases = json.loads((FIXTURES / "legacy_hashes.json").read_text())["cases"]
    seeds = [f"{case['hash']}\n{case['password']}" for case in cases]
    # Cheap real hashes of the password the target may see matched, within its limits.
    salt = b"fuzzsalt12345678"
    cheap = argon2.low_level.hash_secret(
        PASSWORD.encode(), salt, time_cost=1, memory_cost=8, parallelism=1, hash_len=32,
        type=argon2.low_level.Type.ID).decode()
    seeds.append(f"{cheap}\n{PASSWORD}")
    seeds.append(f"{cheap}\nwrong password")
    crypt = bcrypt.hashpw(PASSWORD.encode(), b"$2b$04$" + b"fuzzfuzzfuzzfuzzfuzzfu").decode()
    seeds.append(f"{crypt}\n{PASSWORD}")
    derived = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), b"fuzzsalt", 1000)
    django = f"pbkdf2_sha256$1000$fuzzsalt${base64.b64encode(derived).decode()}"
    seeds.append(f"{django}\n{PASSWORD}")
    seeds += [
        "$argon2id$v=19$m=4294967295,t=4294967295,p=255$c2FsdHNhbHQ$aGFzaA\nx",
        "$argon2id$v=19$m=8,t=1,p=1$$\nx", "$argon2i$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\nx",
        "$2y$31$" + "a" * 53 + "\nx", "$2a$04$short\nx", "pbkdf2_sha256$999999999$s$h\nx",
        "pbkdf2_sha256$-1$s$h\nx", "!\nx", "\nx", "plain text password\nx",
    ]
    return seeds


def request_headers():
    return [
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig\n203.0.113.9\nMozilla/5.0",
        "bearer   abc\n198.51.100.1, 203.0.113.9\ncurl/8",
        "Basic dXNlcjpwYXNz\n[2001:db8::1]:4711\n",
        "Bearer \ngarbage\n\x07agent",
        "theme=dark; __Host-auth_oauth=eb_1\n203.0.113.9:80\nUA",
        "auth_oauth=\"eb_2\"; auth_session=bs_3\n,,,\n",
        "BEARER a b\n\n",
    ]


def access_token():
    # Arbitrary text (mode < 128) and mutations of a real token (mode >= 128).
    return [
        b"\x00eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        b"\x01eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x",
        b"\x02a.b.c", b"\x00", b"\x03....", b"\x80\x00\x01", b"\x81\x40\x20\xff\x01",
        b"\x82\xfe\x01", b"\x80\x10\x80\x90\x80",
    ]


def opaque_token():
    return [
        b"\x00rt_" + b"A" * 43, b"\x0apkc_" + b"_" * 43, b"\x04mfa_" + b"-" * 43, b"\x01pr_short",
        b"\x02ev_" + b"A" * 42 + b"=", b"\x03\x00\x01\x10\x20", b"\x05st_" + "é".encode() * 21,
    ]


CONTENT = {"json": 0, "form": 1}


def http_body():
    bodies = [
        (0, "json", {"email": "ada@example.com", "password": PASSWORD}),
        (0, "form", f"username=ada%40example.com&password={PASSWORD.replace(' ', '+')}"),
        (1, "json", {"refresh_token": "rt_" + "A" * 43}),
        (2, "json", {"current_password": PASSWORD, "new_password": "another passphrase", "code": "123456"}),
        (3, "json", {"new_email": "new@example.com", "password": PASSWORD}),
        (4, "json", {"password": PASSWORD, "recovery_code": "abcd-efgh-ijkl-mnop"}),
        (5, "json", {"email": "ada@example.com"}),
        (6, "json", {"token": "pr_x", "new_password": "another passphrase"}),
        (7, "json", {"token": "ev_x"}),
        (8, "json", {"roles": ["admin", "support"]}),
        (9, "json", {"email": "bob@example.com", "roles": ["admin"]}),
        (10, "json", {"mfa_token": "mfa_x", "code": "123 456"}),
        (11, "json", {"password": PASSWORD, "code": "1", "recovery_code": "2"}),
        (12, "json", {"code": "123456"}),
        (13, "json", {"next": "/app?tab=1"}),
        (14, "json", {"code": "xc_x", "code_verifier": "v" * 43}),
        (15, "json", {"ceremony": "pkc_x", "credential": {"id": "AA", "response": {}}, "name": "Laptop"}),
        (16, "json", {"ceremony": "pkc_x", "credential": {}}),
        (17, "json", {"mfa_token": "mfa_x"}),
        (18, "json", {"mfa_token": "mfa_x", "ceremony": "pkc_x", "credential": None}),
        (19, "json", {"name": "Phone"}),
        (20, "form", "a=1&b=%ZZ&c"),
    ]
    seeds = []
    for kind, content, body in bodies:
        data = json.dumps(body) if content == "json" else body
        seeds.append(bytes([kind * 8 + CONTENT[content]]) + data.encode())
    seeds += [b"\x00{\"email\": 1}", b"\x05", b"\x00[[[[[[[[[[[[[[[[[[[[", b"\x00\"\\ud800\""]
    return seeds


def http_query():
    return [
        "", "after=00000000-0000-0000-0000-000000000000&limit=10&email=ada%40ex",
        "kind=login_failed&user=0190a6a4-3c4e-7000-8000-000000000000", "after=nope", "limit=-1",
        "next=%2Fapp%3Ftab%3D1", "next=/a&next=/b", "code_challenge=abc&code_challenge_method=S256",
        "code_challenge=abc&code_challenge_method=plain", "state=st_1&code=c&iss=https%3A%2F%2Fidp",
        "state=st_1&error=access_denied", "0190a6a4-3c4e-7000-8000-000000000000",
        "{0190a6a4-3c4e-7000-8000-000000000000}", "urn:uuid:0190a6a4-3c4e-7000-8000-000000000000",
        "%", "a=%ff%fe", "limit=99999999999999999999",
    ]


def second_factor_code():
    return [b"\x00123456", b"\x00123 456", b"\x01000000", b"\x02abcd-efgh-ijkl-mnop",
            b"\x00ABCD EFGH IJKL MNOP", b"\x01", b"\x02\xff\xfe", b"\x00\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6"]


def passkey_assertion():
    assertion = {
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": {"authenticatorData": "AAAA", "clientDataJSON": "e30", "signature": "MEQ", "userHandle": None},
    }
    return [
        b"\x00" + json.dumps(assertion).encode(), b"\x01{}", b"\x02[]", b"\x03\"x\"", b"\x04null",
        b"\x80", b"\x80\x00\x10\x01", b"\x81\x01\x20\x80", b"\x82\x02\x40\x01\x03\x80\x01", b"\x83\x03\xff\xff",
    ]


write("email", EMAILS)
write("stored_hash", stored_hashes())
write("request_headers", request_headers())
write("access_token", access_token())
write("opaque_token", opaque_token())
write("http_body", http_body())
write("http_query", http_query())
write("second_factor_code", second_factor_code())
write("passkey_assertion", passkey_assertion())
