#!/usr/bin/env python3
"""An independent implementation of Sealpost envelope v1 (crypto/SPEC.md) in Python. It writes
v1.json, the test vectors that the Rust crate's tests/vectors.rs checks byte for byte. Two
implementations agreeing from the spec is the point: regenerate with
`python3 crypto/vectors/reference.py > crypto/vectors/v1.json`.

Needs Python 3.9 or later and two packages from PyPI: `cryptography` (a release with
`hazmat.primitives.kdf.argon2.Argon2id`, for Argon2id with associated data; tested with 48) and `argon2-cffi` (`pip install --user cryptography
argon2-cffi`). HPKE (RFC 9180, base mode, for the sender's copy of SPEC.md section 10) is
written out below from the RFC on top of `cryptography`'s X25519, HMAC-SHA256 and AES-GCM, not
taken from an HPKE library, and checked first against the RFC's own Appendix A.1 vector.
"""
import base64
import hashlib
import hmac
import json

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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


# --- HPKE (RFC 9180), base mode, DHKEM(X25519, HKDF-SHA256) with HKDF-SHA256 ---------------

KEM_X25519_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_128_GCM, AEAD_AES_256_GCM = 0x0001, 0x0002
AEAD_KEY_LEN = {AEAD_AES_128_GCM: 16, AEAD_AES_256_GCM: 32}
KEM_SUITE = b"KEM" + KEM_X25519_SHA256.to_bytes(2, "big")


def hpke_suite(aead_id):
    return (b"HPKE" + KEM_X25519_SHA256.to_bytes(2, "big") + KDF_HKDF_SHA256.to_bytes(2, "big")
            + aead_id.to_bytes(2, "big"))


def labeled_extract(suite_id, salt, label, ikm):
    # HKDF-Extract (RFC 5869 section 2.2): HMAC-SHA256 keyed with the salt (empty: 32 zeros).
    return hmac.new(salt, b"HPKE-v1" + suite_id + label + ikm, hashlib.sha256).digest()


def labeled_expand(suite_id, prk, label, info, length):
    labeled_info = length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=labeled_info).derive(prk)


def clamp(sk):
    # RFC 7748 section 5; RFC 9180 section 7.1.2: SerializePrivateKey clamps its output.
    b = bytearray(sk)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def x25519_public(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def derive_key_pair(ikm):
    # RFC 9180 section 7.1.3. The scalar as derived, unclamped, as Appendix A prints it (X25519
    # clamps when it uses it); Sealpost stores it clamped (clamp above).
    dkp_prk = labeled_extract(KEM_SUITE, b"", b"dkp_prk", ikm)
    sk = labeled_expand(KEM_SUITE, dkp_prk, b"sk", b"", 32)
    return sk, x25519_public(sk)


def dh(sk, pk):
    # cryptography refuses an all-zero result, as RFC 9180 section 7.1.4 requires.
    return X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))


def encap(pk_r, ikm_e):
    # RFC 9180 section 4.1, the ephemeral key from DeriveKeyPair(ikm_e).
    sk_e, enc = derive_key_pair(ikm_e)
    eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh(sk_e, pk_r))
    return labeled_expand(KEM_SUITE, eae_prk, b"shared_secret", enc + pk_r, 32), enc


def decap(enc, sk_r):
    eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh(sk_r, enc))
    return labeled_expand(KEM_SUITE, eae_prk, b"shared_secret", enc + x25519_public(sk_r), 32)


def key_schedule_base(aead_id, shared_secret, info):
    # RFC 9180 section 5.1, mode_base (0x00), empty psk and psk_id.
    suite = hpke_suite(aead_id)
    context = (b"\x00" + labeled_extract(suite, b"", b"psk_id_hash", b"")
               + labeled_extract(suite, b"", b"info_hash", info))
    secret = labeled_extract(suite, shared_secret, b"secret", b"")
    key = labeled_expand(suite, secret, b"key", context, AEAD_KEY_LEN[aead_id])
    base_nonce = labeled_expand(suite, secret, b"base_nonce", context, 12)
    exporter_secret = labeled_expand(suite, secret, b"exp", context, 32)
    return {"key_schedule_context": context, "secret": secret, "key": key,
            "base_nonce": base_nonce, "exporter_secret": exporter_secret}


def hpke_seal_base(aead_id, pk_r, info, aad, pt, ikm_e):
    # RFC 9180 section 6.1, single shot: sequence number 0, so the nonce is base_nonce.
    shared_secret, enc = encap(pk_r, ikm_e)
    ks = key_schedule_base(aead_id, shared_secret, info)
    return enc, AESGCM(ks["key"]).encrypt(ks["base_nonce"], pt, aad), shared_secret, ks


def hpke_open_base(aead_id, sk_r, enc, info, aad, ct):
    ks = key_schedule_base(aead_id, decap(enc, sk_r), info)
    return AESGCM(ks["key"]).decrypt(ks["base_nonce"], ct, aad)


# RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode),
# transcribed; the implementation above must reproduce every value before anything is written.
RFC9180_A1 = {
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "ikmE": "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
    "pkEm": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
    "skEm": "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
    "ikmR": "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
    "pkRm": "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
    "skRm": "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
    "enc": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
    "shared_secret": "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
    "key_schedule_context": "00725611c9d98c07c03f60095cd32d400d8347d45ed67097bbad50fc56da742d07"
                            "cb6cffde367bb0565ba28bb02c90744a20f5ef37f30523526106f637abb05449",
    "secret": "12fff91991e93b48de37e7daddb52981084bd8aa64289c3788471d9a9712f397",
    "key": "4531685d41d65f03dc48f6b8302c05b0",
    "base_nonce": "56d890e5accaaf011cff4b7d",
    "exporter_secret": "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8",
    "pt": "4265617574792069732074727574682c20747275746820626561757479",
    "aad": "436f756e742d30",
    "ct": "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
}


def check_rfc9180_a1():
    v = {k: bytes.fromhex(x) for k, x in RFC9180_A1.items()}
    sk_r, pk_r = derive_key_pair(v["ikmR"])
    sk_e, pk_e = derive_key_pair(v["ikmE"])
    assert (sk_r, pk_r, sk_e, pk_e) == (v["skRm"], v["pkRm"], v["skEm"], v["pkEm"]), "A.1 keys"
    enc, ct, shared_secret, ks = hpke_seal_base(AEAD_AES_128_GCM, pk_r, v["info"], v["aad"], v["pt"], v["ikmE"])
    assert (enc, shared_secret) == (v["enc"], v["shared_secret"]), "A.1 encap"
    for name in ("key_schedule_context", "secret", "key", "base_nonce", "exporter_secret"):
        assert ks[name] == v[name], "A.1 " + name
    assert ct == v["ct"], "A.1 ciphertext"
    assert hpke_open_base(AEAD_AES_128_GCM, sk_r, enc, v["info"], v["aad"], ct) == v["pt"], "A.1 open"


# --- The sender's copy (SPEC.md section 10) -----------------------------------------------

SENDER_COPY_LABEL = b"sealpost/v1/sender-copy"
SENDER_KEY_LABEL = b"sealpost/v1/sender-key"
SESSION_KEY_LABEL = b"sealpost/v1/session-key"


def seal_dek(pk, dek, message_id, owner_id, ikm_e):
    info = SENDER_COPY_LABEL + message_id + owner_id
    enc, ct, shared_secret, ks = hpke_seal_base(AEAD_AES_256_GCM, pk, info, b"", dek, ikm_e)
    return VERSION + enc + ct, shared_secret, ks


def open_dek(sk, sealed, message_id, owner_id):
    assert len(sealed) == 81 and sealed[:1] == VERSION
    info = SENDER_COPY_LABEL + message_id + owner_id
    return hpke_open_base(AEAD_AES_256_GCM, sk, sealed[1:33], info, b"", sealed[33:])


def password_key(password, salt):
    # Argon2id with the passphrase parameters and associated data = the sender-key label.
    return Argon2id(salt=salt, length=32, iterations=2, lanes=1, memory_cost=19456,
                    ad=SENDER_KEY_LABEL).derive(password.encode())


def wrap_with_password(sk, pkey, salt, nonce, user_id):
    return VERSION + salt + nonce + AESGCM(pkey).encrypt(nonce, sk, SENDER_KEY_LABEL + user_id)


def unwrap_with_password(wrapped, password, user_id):
    assert len(wrapped) == 77 and wrapped[:1] == VERSION
    salt, nonce, body = wrapped[1:17], wrapped[17:29], wrapped[29:]
    return clamp(AESGCM(password_key(password, salt)).decrypt(nonce, body, SENDER_KEY_LABEL + user_id))


def wrap_for_session(sk, session_key, nonce, user_id, session_id):
    return VERSION + nonce + AESGCM(session_key).encrypt(nonce, sk, SESSION_KEY_LABEL + user_id + session_id)


def unwrap_for_session(wrapped, session_key, user_id, session_id):
    assert len(wrapped) == 61 and wrapped[:1] == VERSION
    aad = SESSION_KEY_LABEL + user_id + session_id
    return clamp(AESGCM(session_key).decrypt(wrapped[1:13], wrapped[13:], aad))


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

check_rfc9180_a1()
vectors["rfc9180_a1"] = RFC9180_A1

owner_id = bytes.fromhex("0193a1b2c3d47e5f8a9b0c1d2e3f4053")
session_id = bytes.fromhex("0193a1b2c3d47e5f8a9b0c1d2e3f4054")
key_pair_ikm = bytes(range(0x60, 0x80))
ephemeral_ikm = bytes(range(0xa0, 0xc0))
password = "staff password, long enough"
password_salt = bytes(range(0xd0, 0xe0))
password_nonce = bytes(range(0x10, 0x1c))
session_key = bytes(range(0x70, 0x90))
session_nonce = bytes(range(0xf4, 0x100))

sk, pk = derive_key_pair(key_pair_ikm)
sk = clamp(sk)  # SerializePrivateKey (RFC 9180 section 7.1.2): what is wrapped
sealed, hpke_shared_secret, hpke_ks = seal_dek(pk, dek, message_id, owner_id, ephemeral_ikm)
assert open_dek(sk, sealed, message_id, owner_id) == dek
pkey = password_key(password, password_salt)
password_wrapped = wrap_with_password(sk, pkey, password_salt, password_nonce, owner_id)
assert unwrap_with_password(password_wrapped, password, owner_id) == sk
session_wrapped = wrap_for_session(sk, session_key, session_nonce, owner_id, session_id)
assert unwrap_for_session(session_wrapped, session_key, owner_id, session_id) == sk

vectors["sender_copy"] = {
    "inputs": {
        "message_id": message_id.hex(), "owner_id": owner_id.hex(), "dek": dek.hex(),
        "key_pair_ikm": key_pair_ikm.hex(), "ephemeral_ikm": ephemeral_ikm.hex(),
        "password": password, "password_salt": password_salt.hex(),
        "password_nonce": password_nonce.hex(), "session_key": session_key.hex(),
        "session_id": session_id.hex(), "session_nonce": session_nonce.hex(),
    },
    "private_key": sk.hex(),
    "public_key": pk.hex(),
    "hpke_shared_secret": hpke_shared_secret.hex(),
    "hpke_key": hpke_ks["key"].hex(),
    "hpke_base_nonce": hpke_ks["base_nonce"].hex(),
    "sealed_dek": sealed.hex(),
    "password_key": pkey.hex(),
    "password_wrapped_key": password_wrapped.hex(),
    "session_key_text": b64url(session_key),
    "session_wrapped_key": session_wrapped.hex(),
}
print(json.dumps(vectors, indent=2))
