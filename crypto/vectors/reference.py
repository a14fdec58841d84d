#!/usr/bin/env python3
"""An independent implementation of Sealpost envelope v1 (crypto/SPEC.md) in Python, using the
`cryptography` and `argon2-cffi` packages. It writes v1.json, the test vectors that the Rust
crate's tests/vectors.rs checks byte for byte. Two implementations agreeing from the spec is the
point: regenerate with `python3 crypto/vectors/reference.py > crypto/vectors/v1.json`.
"""
import base64
import hashlib
import json

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
CHUNK = 65536


def hkdf(salt, ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def passphrase_key(passphrase, salt):
    return hash_secret_raw(passphrase.encode(), salt, time_cost=2, memory_cost=19456,
                           parallelism=1, hash_len=32, type=Type.ID, version=19)


def kek(server_key, link_secret, pkey, message_id, recipient_id):
    ikm = link_secret + (pkey or b"")
    return hkdf(server_key, ikm, b"sealpost/v1/kek" + message_id + recipient_id)


def wrap(kek_bytes, dek, key_id, nonce, message_id, recipient_id):
    ct = AESGCM(kek_bytes).encrypt(nonce, dek, message_id + recipient_id)
    return VERSION + key_id.to_bytes(4, "big") + nonce + ct


def part_key(dek, message_id, part_no):
    return hkdf(None, dek, b"sealpost/v1/part" + message_id + part_no.to_bytes(4, "big"))


def seal_part(dek, message_id, part_no, prefix, plaintext):
    header = VERSION + prefix
    aead = AESGCM(part_key(dek, message_id, part_no))
    chunks = [plaintext[i:i + CHUNK] for i in range(0, len(plaintext), CHUNK)] or [b""]
    out = []
    for counter, chunk in enumerate(chunks):
        last = b"\x01" if counter == len(chunks) - 1 else b"\x00"
        nonce = prefix + counter.to_bytes(4, "big") + last
        out.append(aead.encrypt(nonce, chunk, header))
    return header, out


def code_digest(recipient_id_text, code):
    return hashlib.sha256(b"sealpost/v1/code\0" + recipient_id_text.encode() + b"\0" + code.encode()).digest()


def token_digest(token):
    return hashlib.sha256(token.encode()).digest()


def uuid_text(b):
    h = b.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def pattern(n):
    return bytes(i % 251 for i in range(n))


server_key = bytes(range(0x00, 0x20))
link_secret = bytes(range(0x40, 0x50))
message_id = bytes.fromhex("0193a1b2c3d47e5f8a9b0c1d2e3f4051")
recipient_id = bytes.fromhex("0193a1b2c3d47e5f8a9b0c1d2e3f4052")
dek = bytes(range(0x80, 0xa0))
salt = bytes(range(0xc0, 0xd0))
wrap_nonce = bytes(range(0xe0, 0xec))
prefix = bytes.fromhex("a1a2a3a4a5a6a7")
passphrase = "correct horse battery staple"

pk = passphrase_key(passphrase, salt)
kek_plain = kek(server_key, link_secret, None, message_id, recipient_id)
kek_pass = kek(server_key, link_secret, pk, message_id, recipient_id)

vectors = {
    "inputs": {
        "server_key": server_key.hex(), "server_key_id": 7, "link_secret": link_secret.hex(),
        "message_id": message_id.hex(), "recipient_id": recipient_id.hex(), "dek": dek.hex(),
        "passphrase": passphrase, "passphrase_salt": salt.hex(), "wrap_nonce": wrap_nonce.hex(),
        "nonce_prefix": prefix.hex(),
    },
    "text_forms": {
        "link_secret": b64url(link_secret),
        "server_key": "sealpost-server-key-v1.7." + b64url(server_key),
    },
    "passphrase_key": pk.hex(),
    "kek_without_passphrase": kek_plain.hex(),
    "kek_with_passphrase": kek_pass.hex(),
    "wrapped_dek_without_passphrase": wrap(kek_plain, dek, 7, wrap_nonce, message_id, recipient_id).hex(),
    "wrapped_dek_with_passphrase": wrap(kek_pass, dek, 7, wrap_nonce, message_id, recipient_id).hex(),
    "part_key_0": part_key(dek, message_id, 0).hex(),
    "part_key_1": part_key(dek, message_id, 1).hex(),
    "parts": [],
    "code": {"recipient_id": uuid_text(recipient_id), "code": "042917",
             "digest": code_digest(uuid_text(recipient_id), "042917").hex()},
    "token": {"token": "sp_" + b64url(bytes(range(0x20, 0x40))),
              "digest": token_digest("sp_" + b64url(bytes(range(0x20, 0x40)))).hex()},
}
for part_no, length, text in [(1, 0, None), (1, None, "hello, sealpost"), (2, 65536, None), (3, 65541, None)]:
    plaintext = text.encode() if text is not None else pattern(length)
    header, chunks = seal_part(dek, message_id, part_no, prefix, plaintext)
    vectors["parts"].append({
        "part_no": part_no,
        "plaintext": {"utf8": text} if text is not None else {"pattern_len": length},
        "header": header.hex(),
        "chunks": [c.hex() if len(c) <= 64 else {"len": len(c), "sha256": hashlib.sha256(c).hexdigest()}
                   for c in chunks],
    })
print(json.dumps(vectors, indent=2))
