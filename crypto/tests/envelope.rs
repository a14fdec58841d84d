//! Round trips and every way of tampering the issue names: each must fail to open.

use sealpost_crypto::{
    CHUNK_LEN, CryptoError, Dek, Id, Kek, LinkSecret, PartDecryptor, PartEncryptor, Passphrase,
    PassphraseKey, PassphraseSalt, SEALED_CHUNK_LEN, ServerKey,
};

const MSG: Id = [1; 16];
const OTHER_MSG: Id = [2; 16];
const RCPT: Id = [3; 16];
const OTHER_RCPT: Id = [4; 16];

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

struct Sealed {
    header: [u8; 8],
    chunks: Vec<Vec<u8>>,
}

fn seal(dek: &Dek, msg: &Id, part_no: u32, plaintext: &[u8], piece: usize) -> Sealed {
    let mut enc = PartEncryptor::new(dek, msg, part_no);
    let header = enc.header();
    let mut chunks = Vec::new();
    for p in plaintext.chunks(piece.max(1)) {
        chunks.extend(enc.push(p).expect("push"));
    }
    chunks.push(enc.finish().expect("finish"));
    Sealed { header, chunks }
}

fn open(
    dek: &Dek,
    msg: &Id,
    part_no: u32,
    header: &[u8],
    chunks: &[Vec<u8>],
) -> Result<Vec<u8>, CryptoError> {
    let mut dec = PartDecryptor::new(dek, msg, part_no, header)?;
    let mut out = Vec::new();
    for c in chunks {
        if let Some(p) = dec.push(c.as_slice())? {
            out.extend_from_slice(&p);
        }
    }
    out.extend_from_slice(&dec.finish()?);
    Ok(out)
}

#[test]
fn round_trips_at_chunk_boundaries() {
    let dek = Dek::generate();
    for size in [
        0,
        1,
        CHUNK_LEN - 1,
        CHUNK_LEN,
        CHUNK_LEN + 1,
        10 * 1024 * 1024,
    ] {
        let plaintext = pattern(size, 7);
        for piece in [1000, CHUNK_LEN, 3 * CHUNK_LEN + 5] {
            if size > 1_000_000 && piece == 1000 {
                continue;
            }
            let s = seal(&dek, &MSG, 1, &plaintext, piece);
            let expected_chunks = size.div_ceil(CHUNK_LEN).max(1);
            assert_eq!(s.chunks.len(), expected_chunks, "size {size}");
            for c in &s.chunks[..s.chunks.len() - 1] {
                assert_eq!(c.len(), SEALED_CHUNK_LEN);
            }
            let opened = open(&dek, &MSG, 1, &s.header, &s.chunks).expect("opens");
            assert!(opened == plaintext, "size {size} piece {piece}");
        }
    }
}

#[test]
fn flipping_any_byte_of_any_chunk_fails() {
    let dek = Dek::generate();
    let s = seal(&dek, &MSG, 1, &pattern(2 * CHUNK_LEN + 100, 1), CHUNK_LEN);
    assert_eq!(s.chunks.len(), 3);
    for (ci, chunk) in s.chunks.iter().enumerate() {
        // Every byte of the short last chunk, and a spread of positions in the full ones,
        // including the first and last bytes (the tag).
        let positions: Vec<usize> = if chunk.len() < 1000 {
            (0..chunk.len()).collect()
        } else {
            (0..chunk.len())
                .step_by(997)
                .chain([chunk.len() - 1])
                .collect()
        };
        for pos in positions {
            let mut chunks = s.chunks.clone();
            chunks[ci][pos] ^= 0x01;
            assert_eq!(
                open(&dek, &MSG, 1, &s.header, &chunks),
                Err(CryptoError::CouldNotOpen),
                "chunk {ci} byte {pos}"
            );
        }
    }
    let mut header = s.header;
    header[3] ^= 0x80;
    assert_eq!(
        open(&dek, &MSG, 1, &header, &s.chunks),
        Err(CryptoError::CouldNotOpen)
    );
}

#[test]
fn dropping_reordering_and_moving_chunks_fails() {
    let dek = Dek::generate();
    let s = seal(&dek, &MSG, 1, &pattern(3 * CHUNK_LEN + 10, 2), CHUNK_LEN);
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &s.chunks)
            .expect("intact")
            .len(),
        3 * CHUNK_LEN + 10
    );

    // Dropping the last chunk, or the last two.
    for keep in 1..s.chunks.len() {
        assert_eq!(
            open(&dek, &MSG, 1, &s.header, &s.chunks[..keep]),
            Err(CryptoError::CouldNotOpen),
            "kept {keep}"
        );
    }
    // Dropping a middle chunk.
    let mut dropped = s.chunks.clone();
    dropped.remove(1);
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &dropped),
        Err(CryptoError::CouldNotOpen)
    );
    // No chunks at all.
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &[]),
        Err(CryptoError::CouldNotOpen)
    );
    // Reordering.
    let mut swapped = s.chunks.clone();
    swapped.swap(0, 1);
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &swapped),
        Err(CryptoError::CouldNotOpen)
    );
    // Duplicating a chunk.
    let mut duplicated = s.chunks.clone();
    duplicated.insert(1, s.chunks[0].clone());
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &duplicated),
        Err(CryptoError::CouldNotOpen)
    );
    // Appending after the last chunk.
    let mut extended = s.chunks.clone();
    extended.push(s.chunks[0].clone());
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &extended),
        Err(CryptoError::CouldNotOpen)
    );

    // Moving a chunk into another part of the same message (same DEK, same header).
    let other_part = seal(&dek, &MSG, 2, &pattern(3 * CHUNK_LEN + 10, 3), CHUNK_LEN);
    let mut mixed = s.chunks.clone();
    mixed[1] = other_part.chunks[1].clone();
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &mixed),
        Err(CryptoError::CouldNotOpen)
    );
    // Opening a whole part as another part number or another message.
    assert_eq!(
        open(&dek, &MSG, 2, &s.header, &s.chunks),
        Err(CryptoError::CouldNotOpen)
    );
    assert_eq!(
        open(&dek, &OTHER_MSG, 1, &s.header, &s.chunks),
        Err(CryptoError::CouldNotOpen)
    );
    // Moving a chunk in from another message.
    let other_dek = Dek::generate();
    let other_msg = seal(
        &other_dek,
        &OTHER_MSG,
        1,
        &pattern(3 * CHUNK_LEN + 10, 2),
        CHUNK_LEN,
    );
    let mut foreign = s.chunks.clone();
    foreign[0] = other_msg.chunks[0].clone();
    assert_eq!(
        open(&dek, &MSG, 1, &s.header, &foreign),
        Err(CryptoError::CouldNotOpen)
    );
    // The wrong DEK.
    assert_eq!(
        open(&other_dek, &MSG, 1, &s.header, &s.chunks),
        Err(CryptoError::CouldNotOpen)
    );
}

#[test]
fn decryptor_stays_failed_after_an_error() {
    let dek = Dek::generate();
    let s = seal(&dek, &MSG, 1, &pattern(2 * CHUNK_LEN + 1, 4), CHUNK_LEN);
    let mut dec = PartDecryptor::new(&dek, &MSG, 1, &s.header).expect("header");
    let mut bad = s.chunks[0].clone();
    bad[0] ^= 1;
    assert_eq!(dec.push(bad).expect("held back"), None);
    assert_eq!(
        dec.push(s.chunks[1].clone()),
        Err(CryptoError::CouldNotOpen)
    );
    assert!(dec.push(s.chunks[2].clone()).is_err());
    assert!(dec.finish().is_err());
    // Oversized and undersized chunks are refused, not buffered.
    let mut dec = PartDecryptor::new(&dek, &MSG, 1, &s.header).expect("header");
    assert_eq!(
        dec.push(vec![0u8; SEALED_CHUNK_LEN + 1]),
        Err(CryptoError::CouldNotOpen)
    );
    let mut dec = PartDecryptor::new(&dek, &MSG, 1, &s.header).expect("header");
    assert_eq!(dec.push(vec![0u8; 15]), Err(CryptoError::CouldNotOpen));
    assert!(matches!(
        PartDecryptor::new(&dek, &MSG, 1, &s.header[..7]),
        Err(CryptoError::Malformed(_))
    ));
    let mut v2 = s.header;
    v2[0] = 2;
    assert!(matches!(
        PartDecryptor::new(&dek, &MSG, 1, &v2),
        Err(CryptoError::Malformed(_))
    ));
}

struct Recipient {
    server_key: ServerKey,
    secret: LinkSecret,
    salt: PassphraseSalt,
}

fn kek(r: &Recipient, passphrase: Option<&str>, msg: &Id, rcpt: &Id) -> Kek {
    let pk = passphrase
        .map(|p| PassphraseKey::derive(&Passphrase::new(p.to_owned()), &r.salt).expect("argon2"));
    Kek::derive(&r.server_key, &r.secret, pk.as_ref(), msg, rcpt)
}

#[test]
fn wrong_secret_passphrase_server_key_or_ids_fail_to_unwrap() {
    let dek = Dek::generate();
    let r = Recipient {
        server_key: ServerKey::generate(),
        secret: LinkSecret::generate(),
        salt: PassphraseSalt::generate(),
    };
    let wrapped =
        kek(&r, Some("open sesame"), &MSG, &RCPT).wrap(&dek, r.server_key.key_id(), &MSG, &RCPT);
    assert_eq!(wrapped.len(), sealpost_crypto::WRAPPED_DEK_LEN);
    assert_eq!(
        kek(&r, Some("open sesame"), &MSG, &RCPT)
            .unwrap(&wrapped, &MSG, &RCPT)
            .expect("right inputs"),
        dek
    );

    let fail = |k: Kek, m: &Id, rc: &Id| {
        assert_eq!(k.unwrap(&wrapped, m, rc), Err(CryptoError::CouldNotOpen))
    };
    let wrong_secret = Recipient {
        secret: LinkSecret::generate(),
        ..clone_r(&r)
    };
    fail(
        kek(&wrong_secret, Some("open sesame"), &MSG, &RCPT),
        &MSG,
        &RCPT,
    );
    fail(kek(&r, Some("open sesame!"), &MSG, &RCPT), &MSG, &RCPT);
    fail(kek(&r, None, &MSG, &RCPT), &MSG, &RCPT);
    let wrong_key = Recipient {
        server_key: ServerKey::generate(),
        ..clone_r(&r)
    };
    fail(
        kek(&wrong_key, Some("open sesame"), &MSG, &RCPT),
        &MSG,
        &RCPT,
    );
    let wrong_salt = Recipient {
        salt: PassphraseSalt::generate(),
        ..clone_r(&r)
    };
    fail(
        kek(&wrong_salt, Some("open sesame"), &MSG, &RCPT),
        &MSG,
        &RCPT,
    );
    // The right KEK presented for another message or recipient (AAD), and KEKs derived for them.
    fail(kek(&r, Some("open sesame"), &MSG, &RCPT), &OTHER_MSG, &RCPT);
    fail(kek(&r, Some("open sesame"), &MSG, &RCPT), &MSG, &OTHER_RCPT);
    fail(
        kek(&r, Some("open sesame"), &OTHER_MSG, &RCPT),
        &OTHER_MSG,
        &RCPT,
    );
    fail(
        kek(&r, Some("open sesame"), &MSG, &OTHER_RCPT),
        &MSG,
        &OTHER_RCPT,
    );
    // Any altered byte of the wrapped key.
    let right = kek(&r, Some("open sesame"), &MSG, &RCPT);
    for i in 5..wrapped.len() {
        let mut w = wrapped.clone();
        w[i] ^= 0x10;
        assert_eq!(
            right.unwrap(&w, &MSG, &RCPT),
            Err(CryptoError::CouldNotOpen),
            "byte {i}"
        );
    }
    assert!(matches!(
        right.unwrap(&wrapped[..64], &MSG, &RCPT),
        Err(CryptoError::Malformed(_))
    ));
}

fn clone_r(r: &Recipient) -> Recipient {
    Recipient {
        server_key: r.server_key.clone(),
        secret: r.secret.clone(),
        salt: r.salt,
    }
}

#[test]
fn link_secret_parse_accepts_only_the_canonical_form() {
    let s = LinkSecret::generate();
    let text = s.encode();
    assert_eq!(text.len(), 22);
    assert_eq!(LinkSecret::parse(&text).expect("round trip"), s);
    for bad in [
        "",
        "short",
        "QEFCQ0RFRkdISUpLTE1OTw=",
        "QEFCQ0RFRkdISUpLTE1OT",
        "QEFCQ0RFRkdISUpLTE1OTx",
        "QEFCQ0RFRkdISUpLTE1OT+",
        "QEFCQ0RFRkdISUpLTE1OTwA",
        "ÄEFCQ0RFRkdISUpLTE1OTw",
    ] {
        assert_eq!(
            LinkSecret::parse(bad),
            Err(CryptoError::Malformed("link secret")),
            "{bad:?}"
        );
    }
}

#[test]
fn server_key_text_forms() {
    let k = ServerKey::generate();
    assert_eq!(
        ServerKey::parse(&format!("  {}\n", k.encode().as_str())).expect("file form"),
        k
    );
    let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let from_std = ServerKey::parse(b64).expect("standard base64");
    assert_eq!(from_std.key_id(), 1);
    assert_eq!(
        ServerKey::parse(b64.trim_end_matches('=').replace('+', "-").as_str()).expect("url-safe"),
        from_std
    );
    for bad in [
        "",
        "sealpost-server-key-v1.x.AAAA",
        "sealpost-server-key-v1.1.AAAA",
        "sealpost-server-key-v1..AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "AAECAwQF",
    ] {
        assert!(
            matches!(ServerKey::parse(bad), Err(CryptoError::Malformed(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn secrets_never_print() {
    let dbg = format!(
        "{:?} {:?} {:?} {:?}",
        LinkSecret::generate(),
        ServerKey::generate(),
        Dek::generate(),
        Passphrase::new("hunter2".into())
    );
    assert!(!dbg.contains("hunter2"));
    assert_eq!(dbg.matches("<redacted>").count(), 4, "{dbg}");
}

#[test]
fn passwords_hash_and_verify() {
    let phc = sealpost_crypto::password::hash("s3cret pass").expect("hash");
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(sealpost_crypto::password::verify("s3cret pass", &phc));
    assert!(!sealpost_crypto::password::verify("s3cret pass ", &phc));
    assert!(!sealpost_crypto::password::verify(
        "s3cret pass",
        "not a phc string"
    ));
    let t = sealpost_crypto::token::generate();
    assert!(t.starts_with("sp_") && t.len() == 46, "{}", t.as_str());
}
