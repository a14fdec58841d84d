//! Feeds arbitrary bytes to every function of sealpost-crypto that parses or opens
//! untrusted input. Nothing may panic, hang or allocate without bound.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealpost_crypto::{
    Dek, Kek, LinkSecret, PartDecryptor, PartEncryptor, PassphraseSalt, PasswordKey, SenderKeyPair,
    SenderPublicKey, ServerKey, SessionKey, password_wrap_salt, wrapped_key_id,
};

/// The sender's-copy keys, made once: Argon2 per input would slow the fuzzer a hundredfold.
fn sender_keys() -> &'static (SenderKeyPair, PasswordKey, SessionKey) {
    static KEYS: OnceLock<(SenderKeyPair, PasswordKey, SessionKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let salt = PassphraseSalt::from_slice(&[3; 16]).expect("16 bytes");
        let password_key = PasswordKey::derive("password", &salt).expect("argon2");
        (
            SenderKeyPair::generate(),
            password_key,
            SessionKey::generate(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = LinkSecret::parse(&text);
    let _ = SessionKey::parse(&text);
    let _ = ServerKey::parse(&text);
    let _ = ServerKey::from_base64(&text);
    let _ = PassphraseSalt::from_slice(data);
    let _ = wrapped_key_id(data);
    let _ = sealpost_crypto::password::verify("password", &text);

    let server_key = ServerKey::from_bytes(1, [7; 32]);
    let secret = LinkSecret::parse("QEFCQ0RFRkdISUpLTE1OTw").expect("valid constant");
    let kek = Kek::derive(&server_key, &secret, None, &[1; 16], &[2; 16]);
    let _ = kek.unwrap(data, &[1; 16], &[2; 16]);

    // The sender's copy: every opener on the raw input, and sealing to any 32-byte key.
    let (pair, password_key, session_key) = sender_keys();
    let _ = password_wrap_salt(data);
    let _ = pair.private_key().open_dek(data, &[1; 16], &[2; 16]);
    let _ = password_key.unwrap(data, &[2; 16]);
    let _ = session_key.unwrap(data, &[2; 16], &data[..data.len().min(40)]);
    if let Ok(public) = SenderPublicKey::from_slice(&data[..data.len().min(32)]) {
        let _ = public.seal_dek(&Dek::generate(), &[1; 16], &[2; 16]);
    }

    // A real sealed stream, then the fuzz input as edits to it and as chunks of its own.
    let dek = Dek::generate();
    let mut enc = PartEncryptor::new(&dek, &[1; 16], 1);
    let header = enc.header();
    let mut chunks = enc.push(&data[..data.len().min(200)]).expect("push");
    chunks.push(enc.finish().expect("finish"));
    if let Some((&first, rest)) = data.split_first() {
        let header_in = if first & 1 == 0 { &header[..] } else { &rest[..rest.len().min(8)] };
        if let Ok(mut dec) = PartDecryptor::new(&dek, &[1; 16], 1, header_in) {
            let mut i = 0;
            let mut failed = false;
            while i < rest.len() && !failed {
                let len = usize::from(rest[i]) * 4;
                let end = (i + 1 + len).min(rest.len());
                failed = dec.push(&rest[i + 1..end]).is_err();
                i = end;
            }
            let _ = dec.finish();
        }
        let mut tampered = chunks.clone();
        if let Some(last) = tampered.last_mut() {
            let pos = usize::from(first) % last.len();
            last[pos] ^= rest.first().copied().unwrap_or(1) | 1;
        }
        if let Ok(mut dec) = PartDecryptor::new(&dek, &[1; 16], 1, &header) {
            for c in tampered {
                if dec.push(c).is_err() {
                    return;
                }
            }
            assert!(dec.finish().is_err(), "a tampered stream opened");
        }
    }
});
