//! The test vectors of `SPEC.md`, produced by the independent Python implementation in
//! `vectors/reference.py`, checked byte for byte against this crate.

use std::collections::VecDeque;
use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use sealpost_crypto::hash::sha256;
use sealpost_crypto::{
    Dek, Id, Kek, LinkSecret, PartDecryptor, PartEncryptor, Passphrase, PassphraseKey,
    PassphraseSalt, ServerKey,
};
use serde_json::Value;

/// Hands out exactly the bytes it was given, so "random" values are the vector's inputs.
struct ScriptRng(VecDeque<u8>);

impl TryRng for ScriptRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            *byte = self.0.pop_front().expect("script ran out of bytes");
        }
        Ok(())
    }
}
impl TryCryptoRng for ScriptRng {}

fn script(hex_bytes: &str) -> ScriptRng {
    ScriptRng(hex::decode(hex_bytes).expect("hex").into())
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/v1.json")).expect("v1.json parses")
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("{key} missing"))).expect("hex")
}

fn id(v: &Value, key: &str) -> Id {
    hex_field(v, key).try_into().expect("16-byte id")
}

struct Inputs {
    server_key: ServerKey,
    link_secret: LinkSecret,
    message_id: Id,
    recipient_id: Id,
    dek: Dek,
    v: Value,
}

fn inputs() -> Inputs {
    let all = vectors();
    let v = all["inputs"].clone();
    let key: [u8; 32] = hex_field(&v, "server_key").try_into().expect("32 bytes");
    let key_id = v["server_key_id"].as_u64().expect("key id") as u32;
    Inputs {
        server_key: ServerKey::from_bytes(key_id, key),
        link_secret: LinkSecret::generate_with(&mut script(
            v["link_secret"].as_str().expect("secret"),
        )),
        message_id: id(&v, "message_id"),
        recipient_id: id(&v, "recipient_id"),
        dek: Dek::generate_with(&mut script(v["dek"].as_str().expect("dek"))),
        v: all,
    }
}

#[test]
fn text_forms_match() {
    let i = inputs();
    let forms = &i.v["text_forms"];
    assert_eq!(
        i.link_secret.encode().as_str(),
        forms["link_secret"].as_str().expect("str")
    );
    assert_eq!(
        LinkSecret::parse(forms["link_secret"].as_str().expect("str")).expect("parses"),
        i.link_secret
    );
    assert_eq!(
        i.server_key.encode().as_str(),
        forms["server_key"].as_str().expect("str")
    );
    let parsed = ServerKey::parse(forms["server_key"].as_str().expect("str")).expect("parses");
    assert_eq!(parsed, i.server_key);
    assert_eq!(parsed.key_id(), 7);
}

fn check_wrap(i: &Inputs, passphrase_key: Option<&PassphraseKey>, expected_key: &str) {
    let kek = Kek::derive(
        &i.server_key,
        &i.link_secret,
        passphrase_key,
        &i.message_id,
        &i.recipient_id,
    );
    let nonce = i.v["inputs"]["wrap_nonce"].as_str().expect("nonce");
    let wrapped = kek.wrap_with(
        &mut script(nonce),
        &i.dek,
        i.server_key.key_id(),
        &i.message_id,
        &i.recipient_id,
    );
    assert_eq!(
        hex::encode(&wrapped),
        i.v[expected_key].as_str().expect("wrapped"),
        "{expected_key}"
    );
    let dek = kek
        .unwrap(&wrapped, &i.message_id, &i.recipient_id)
        .expect("unwraps");
    assert_eq!(dek, i.dek);
}

#[test]
fn wrapped_dek_without_passphrase_matches() {
    check_wrap(&inputs(), None, "wrapped_dek_without_passphrase");
}

#[test]
fn passphrase_key_and_wrapped_dek_with_passphrase_match() {
    let i = inputs();
    let salt =
        PassphraseSalt::from_slice(&hex_field(&i.v["inputs"], "passphrase_salt")).expect("salt");
    let passphrase = Passphrase::new(
        i.v["inputs"]["passphrase"]
            .as_str()
            .expect("pass")
            .to_owned(),
    );
    let pk = PassphraseKey::derive(&passphrase, &salt).expect("derives");
    check_wrap(&i, Some(&pk), "wrapped_dek_with_passphrase");
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn sealed_parts_match() {
    let i = inputs();
    let parts = i.v["parts"].as_array().expect("parts");
    assert!(parts.len() >= 4);
    for part in parts {
        let part_no = part["part_no"].as_u64().expect("part_no") as u32;
        let plaintext = match part["plaintext"]["utf8"].as_str() {
            Some(text) => text.as_bytes().to_vec(),
            None => pattern(part["plaintext"]["pattern_len"].as_u64().expect("len") as usize),
        };
        let prefix = i.v["inputs"]["nonce_prefix"].as_str().expect("prefix");
        let mut enc = PartEncryptor::new_with(&mut script(prefix), &i.dek, &i.message_id, part_no);
        assert_eq!(
            hex::encode(enc.header()),
            part["header"].as_str().expect("header")
        );
        let mut sealed = enc.push(&plaintext).expect("push");
        sealed.push(enc.finish().expect("finish"));
        let expected = part["chunks"].as_array().expect("chunks");
        assert_eq!(
            sealed.len(),
            expected.len(),
            "chunk count of part {part_no}"
        );
        for (got, want) in sealed.iter().zip(expected) {
            match want.as_str() {
                Some(hex_chunk) => assert_eq!(hex::encode(got), hex_chunk),
                None => {
                    assert_eq!(got.len() as u64, want["len"].as_u64().expect("len"));
                    assert_eq!(
                        hex::encode(sha256(got)),
                        want["sha256"].as_str().expect("sha")
                    );
                }
            }
        }
        let mut dec = PartDecryptor::new(&i.dek, &i.message_id, part_no, &enc_header(part))
            .expect("header ok");
        let mut opened = Vec::new();
        for chunk in sealed {
            if let Some(p) = dec.push(chunk).expect("opens") {
                opened.extend_from_slice(&p);
            }
        }
        opened.extend_from_slice(&dec.finish().expect("last opens"));
        assert_eq!(opened, plaintext);
    }
}

fn enc_header(part: &Value) -> Vec<u8> {
    hex_field(part, "header")
}

#[test]
fn code_and_token_digests_match() {
    let v = vectors();
    let code = &v["code"];
    let digest = sealpost_crypto::code::digest(
        code["recipient_id"].as_str().expect("recipient id"),
        code["code"].as_str().expect("code"),
    );
    assert_eq!(
        hex::encode(digest),
        code["digest"].as_str().expect("digest")
    );
    let token = &v["token"];
    let digest = sealpost_crypto::token::digest(token["token"].as_str().expect("token"));
    assert_eq!(
        hex::encode(digest),
        token["digest"].as_str().expect("digest")
    );
}
