//! The test vectors of `SPEC.md`, produced by the independent Python implementation in
//! `vectors/reference.py`, checked byte for byte against this crate; and RFC 9180's own vector
//! against the HPKE crate it seals with.

use std::collections::VecDeque;
use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use sealpost_crypto::hash::sha256;
use sealpost_crypto::{
    Dek, Id, Kek, LinkSecret, PASSWORD_WRAPPED_KEY_LEN, PartDecryptor, PartEncryptor, Passphrase,
    PassphraseKey, PassphraseSalt, PasswordKey, SEALED_DEK_LEN, SESSION_WRAPPED_KEY_LEN,
    SenderKeyPair, SenderPublicKey, ServerKey, SessionKey, password_wrap_salt, unwrap_private_key,
    wrap_private_key_with,
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

/// RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode),
/// as transcribed in `reference.py` (which reproduces it before writing): the HPKE crate this
/// crate seals with derives the same keys, encapsulation and ciphertext as the RFC. Sealpost's
/// suite differs only in the AEAD (AES-256-GCM, id 0x0002), which the sender-copy vector below
/// covers against the Python implementation.
#[test]
fn hpke_crate_matches_rfc9180_appendix_a1() {
    use hpke::aead::AesGcm128;
    use hpke::kdf::HkdfSha256;
    use hpke::kem::X25519HkdfSha256;
    use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};

    let v = vectors();
    let a1 = &v["rfc9180_a1"];
    let field = |key: &str| hex_field(a1, key);
    let (sk_r, pk_r) = X25519HkdfSha256::derive_keypair(&field("ikmR"));
    assert_eq!(pk_r.to_bytes().as_slice(), field("pkRm").as_slice());
    // The RFC prints the derived scalar unclamped; the crate holds it clamped (section 7.1.2).
    let rfc_sk_r = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(&field("skRm")).expect("32");
    assert!(sk_r == rfc_sk_r);

    let info = field("info");
    let (enc, mut sender) = hpke::setup_sender_with_rng::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk_r,
        &info,
        &mut script(a1["ikmE"].as_str().expect("ikmE")),
    )
    .expect("setup");
    assert_eq!(enc.to_bytes().as_slice(), field("enc").as_slice());
    let mut buf = field("pt");
    let tag = sender
        .seal_inout_detached(buf.as_mut_slice().into(), &field("aad"))
        .expect("seal");
    buf.extend_from_slice(&tag.to_bytes());
    assert_eq!(hex::encode(&buf), a1["ct"].as_str().expect("ct"));

    let mut receiver = hpke::setup_receiver::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &rfc_sk_r,
        &enc,
        &info,
    )
    .expect("setup receiver");
    let ct_len = buf.len() - 16;
    let (ct, tag) = buf.split_at_mut(ct_len);
    let tag = hpke::aead::AeadTag::<AesGcm128>::from_bytes(tag).expect("tag");
    receiver
        .open_inout_detached(ct.into(), &field("aad"), &tag)
        .expect("opens");
    assert_eq!(ct, field("pt").as_slice());
}

struct SenderInputs {
    pair: SenderKeyPair,
    message_id: Id,
    owner_id: Id,
    dek: Dek,
    v: Value,
}

fn sender_inputs() -> SenderInputs {
    let v = vectors()["sender_copy"].clone();
    let input = &v["inputs"];
    let script_of = |key: &str| script(input[key].as_str().unwrap_or_else(|| panic!("{key}")));
    SenderInputs {
        pair: SenderKeyPair::generate_with(&mut script_of("key_pair_ikm")),
        message_id: id(input, "message_id"),
        owner_id: id(input, "owner_id"),
        dek: Dek::generate_with(&mut script_of("dek")),
        v,
    }
}

#[test]
fn sender_key_pair_and_sealed_dek_match() {
    let s = sender_inputs();
    assert_eq!(
        hex::encode(s.pair.public_key().as_bytes()),
        s.v["public_key"].as_str().expect("public key")
    );
    assert_eq!(s.pair.private_key().public_key(), s.pair.public_key());
    let stored = SenderPublicKey::from_slice(&hex_field(&s.v, "public_key")).expect("32 bytes");
    let sealed = stored
        .seal_dek_with(
            &mut script(s.v["inputs"]["ephemeral_ikm"].as_str().expect("ikm")),
            &s.dek,
            &s.message_id,
            &s.owner_id,
        )
        .expect("seals");
    assert_eq!(sealed.len(), SEALED_DEK_LEN);
    assert_eq!(
        hex::encode(&sealed),
        s.v["sealed_dek"].as_str().expect("sealed")
    );
    let dek = s
        .pair
        .private_key()
        .open_dek(&sealed, &s.message_id, &s.owner_id)
        .expect("opens");
    assert_eq!(dek, s.dek);
}

#[test]
fn password_wrapped_sender_key_matches() {
    let s = sender_inputs();
    let input = &s.v["inputs"];
    let password = input["password"].as_str().expect("password");
    let salt = PassphraseSalt::from_slice(&hex_field(input, "password_salt")).expect("salt");
    let nonce = input["password_nonce"].as_str().expect("nonce");
    let expected = s.v["password_wrapped_key"].as_str().expect("wrapped");

    // In two steps, as the server runs Argon2 under its semaphore.
    let key = PasswordKey::derive(password, &salt).expect("argon2");
    let wrapped = key.wrap_with(&mut script(nonce), s.pair.private_key(), &s.owner_id);
    assert_eq!(wrapped.len(), PASSWORD_WRAPPED_KEY_LEN);
    assert_eq!(hex::encode(&wrapped), expected);
    assert_eq!(password_wrap_salt(&wrapped), Ok(salt));
    assert_eq!(
        key.unwrap(&wrapped, &s.owner_id).expect("unwraps"),
        *s.pair.private_key()
    );

    // In one.
    let wrapped = wrap_private_key_with(
        &mut script(nonce),
        s.pair.private_key(),
        password,
        &salt,
        &s.owner_id,
    )
    .expect("wraps");
    assert_eq!(hex::encode(&wrapped), expected);
    let private = unwrap_private_key(&wrapped, password, &s.owner_id).expect("unwraps");
    assert_eq!(private, *s.pair.private_key());
    assert_eq!(private.public_key(), s.pair.public_key());
}

#[test]
fn session_key_and_session_wrapped_sender_key_match() {
    let s = sender_inputs();
    let input = &s.v["inputs"];
    let session_key =
        SessionKey::generate_with(&mut script(input["session_key"].as_str().expect("key")));
    let text = s.v["session_key_text"].as_str().expect("text");
    assert_eq!(session_key.encode().as_str(), text);
    assert_eq!(SessionKey::parse(text).expect("parses"), session_key);

    let session_id = hex_field(input, "session_id");
    let wrapped = session_key.wrap_with(
        &mut script(input["session_nonce"].as_str().expect("nonce")),
        s.pair.private_key(),
        &s.owner_id,
        &session_id,
    );
    assert_eq!(wrapped.len(), SESSION_WRAPPED_KEY_LEN);
    assert_eq!(
        hex::encode(&wrapped),
        s.v["session_wrapped_key"].as_str().expect("wrapped")
    );
    let private = session_key
        .unwrap(&wrapped, &s.owner_id, &session_id)
        .expect("unwraps");
    assert_eq!(private, *s.pair.private_key());
}
