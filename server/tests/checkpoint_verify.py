"""An independent verifier of Sealpost audit checkpoints, written from docs/AUDIT.md
("Checkpoints") alone with Python's `cryptography` package, for tests/checkpoint.rs.

    python3 checkpoint_verify.py '<name>+<key id>+<base64 key>' CHECKPOINT_FILE

Prints `origin seq head-hex time` and exits 0 when the checkpoint is signed by that key;
exits 1 with a reason otherwise.
"""

import base64
import hashlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(reason):
    print(reason)
    sys.exit(1)


def main(vkey, path):
    name, key_id_hex, key_b64 = vkey.strip().split("+", 2)
    key = base64.b64decode(key_b64, validate=True)
    if len(key) != 33 or key[0] != 1:
        fail("not an Ed25519 verifier key")
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if key_id.hex() != key_id_hex.lower():
        fail("the key id does not match the key")

    note = open(path, "rb").read().decode("utf-8")
    if not note.endswith("\n") or "\r" in note:
        fail("not a signed note")
    split = note.rfind("\n\n")
    if split < 0:
        fail("no signature lines")
    body, signatures = note[: split + 1], note[split + 2 :]
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            fail("not a signature line: " + line)
        signer, signature_b64 = line[2:].split(" ", 1)
        signature = base64.b64decode(signature_b64, validate=True)
        if signer != name or signature[:4] != key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(signature[4:], body.encode())
        except InvalidSignature:
            fail("bad signature")
        origin, seq, head, time = body.split("\n")[:-1]
        print(origin, int(seq), base64.b64decode(head, validate=True).hex(), time)
        return
    fail("not signed by " + name)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
