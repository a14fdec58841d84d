//! The sender's copy: round trips, and every wrong key, password, id or altered byte refused
//! with the one indistinguishable error.

use proptest::prelude::*;
use sealpost_crypto::{
    CryptoError, Dek, Id, MAX_PASSPHRASE_LEN, PASSWORD_WRAPPED_KEY_LEN, PassphraseSalt,
    PasswordKey, SEALED_DEK_LEN, SESSION_WRAPPED_KEY_LEN, SenderKeyPair, SenderPublicKey,
    SessionKey, password_wrap_salt, unwrap_private_key, wrap_private_key,
};

const MSG: Id = [1; 16];
const OTHER_MSG: Id = [2; 16];
const OWNER: Id = [3; 16];
const OTHER_OWNER: Id = [4; 16];
const SESSION: [u8; 16] = [5; 16];
const OTHER_SESSION: [u8; 16] = [6; 16];

/// Every byte of `blob` flipped in turn, one at a time.
fn each_flip(blob: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..blob.len()).map(move |i| {
        let mut b = blob.to_vec();
        b[i] ^= 0x01;
        (i, b)
    })
}

#[test]
fn sealed_dek_opens_only_for_its_owner_message_and_bytes() {
    let owner = SenderKeyPair::generate();
    let dek = Dek::generate();
    let sealed = owner
        .public_key()
        .seal_dek(&dek, &MSG, &OWNER)
        .expect("seals");
    assert_eq!(sealed.len(), SEALED_DEK_LEN);
    assert_eq!(sealed[0], 1);
    let private = owner.private_key();
    assert_eq!(private.open_dek(&sealed, &MSG, &OWNER), Ok(dek.clone()));

    // A fresh ephemeral key each time: two seals of one DEK differ, and both open.
    let again = owner
        .public_key()
        .seal_dek(&dek, &MSG, &OWNER)
        .expect("seals");
    assert_ne!(again, sealed);
    assert_eq!(private.open_dek(&again, &MSG, &OWNER), Ok(dek.clone()));

    let fail = |r: Result<Dek, CryptoError>| assert_eq!(r, Err(CryptoError::CouldNotOpen));
    // Another user's key, or the key pair an admin reset made anew.
    fail(
        SenderKeyPair::generate()
            .private_key()
            .open_dek(&sealed, &MSG, &OWNER),
    );
    // Moved to another message or owner.
    fail(private.open_dek(&sealed, &OTHER_MSG, &OWNER));
    fail(private.open_dek(&sealed, &MSG, &OTHER_OWNER));
    fail(private.open_dek(&sealed, &OWNER, &MSG));
    // Any altered byte after the version: the encapsulated key, the ciphertext, the tag.
    for (i, b) in each_flip(&sealed).skip(1) {
        assert_eq!(
            private.open_dek(&b, &MSG, &OWNER),
            Err(CryptoError::CouldNotOpen),
            "byte {i}"
        );
    }
    // Damaged structure: another version or length.
    let mut v2 = sealed.clone();
    v2[0] = 2;
    for bad in [
        &v2[..],
        &sealed[..80],
        &[sealed.as_slice(), &[0]].concat(),
        &[],
    ] {
        assert_eq!(
            private.open_dek(bad, &MSG, &OWNER),
            Err(CryptoError::Malformed("sealed dek"))
        );
    }
}

#[test]
fn sealed_dek_with_a_small_order_encapsulated_key_does_not_open() {
    let owner = SenderKeyPair::generate();
    let sealed = owner
        .public_key()
        .seal_dek(&Dek::generate(), &MSG, &OWNER)
        .expect("seals");
    // u = 0 and u = 1 are points of small order: the shared secret would be zero.
    for u in [[0u8; 32], {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    }] {
        let mut b = sealed.clone();
        b[1..33].copy_from_slice(&u);
        assert_eq!(
            owner.private_key().open_dek(&b, &MSG, &OWNER),
            Err(CryptoError::CouldNotOpen)
        );
    }
}

#[test]
fn a_small_order_public_key_is_refused_when_sealing() {
    let zero = SenderPublicKey::from_slice(&[0u8; 32]).expect("32 bytes");
    assert_eq!(
        zero.seal_dek(&Dek::generate(), &MSG, &OWNER),
        Err(CryptoError::Malformed("sender public key"))
    );
    assert_eq!(
        SenderPublicKey::from_slice(&[9u8; 31]),
        Err(CryptoError::Malformed("sender public key"))
    );
}

#[test]
fn password_wrap_opens_only_with_its_password_salt_user_and_bytes() {
    let pair = SenderKeyPair::generate();
    let salt = PassphraseSalt::generate();
    let wrapped =
        wrap_private_key(pair.private_key(), "hunter2 hunter2", &salt, &OWNER).expect("wraps");
    assert_eq!(wrapped.len(), PASSWORD_WRAPPED_KEY_LEN);
    assert_eq!(password_wrap_salt(&wrapped), Ok(salt));
    let private = unwrap_private_key(&wrapped, "hunter2 hunter2", &OWNER).expect("unwraps");
    assert_eq!(&private, pair.private_key());
    assert_eq!(private.public_key(), pair.public_key());

    let fail = |r| assert_eq!(r, Err(CryptoError::CouldNotOpen));
    fail(unwrap_private_key(&wrapped, "hunter2 hunter3", &OWNER));
    fail(unwrap_private_key(&wrapped, "", &OWNER));
    fail(unwrap_private_key(
        &wrapped,
        "hunter2 hunter2",
        &OTHER_OWNER,
    ));

    // The split steps: the right password under another salt, and the right key for another
    // user's row.
    let key = PasswordKey::derive("hunter2 hunter2", &salt).expect("argon2");
    assert_eq!(key.salt(), &salt);
    assert_eq!(
        key.unwrap(&wrapped, &OWNER).as_ref(),
        Ok(pair.private_key())
    );
    let other_salt =
        PasswordKey::derive("hunter2 hunter2", &PassphraseSalt::generate()).expect("argon2");
    fail(other_salt.unwrap(&wrapped, &OWNER));
    fail(key.unwrap(&wrapped, &OTHER_OWNER));

    // Any altered byte after the version: salt, nonce, ciphertext, tag; through the one-step
    // path (which derives from the altered salt) and through a key derived beforehand.
    for (i, b) in each_flip(&wrapped).skip(1) {
        assert_eq!(
            key.unwrap(&b, &OWNER),
            Err(CryptoError::CouldNotOpen),
            "byte {i}"
        );
    }
    for (i, b) in each_flip(&wrapped).skip(1).step_by(7) {
        assert_eq!(
            unwrap_private_key(&b, "hunter2 hunter2", &OWNER),
            Err(CryptoError::CouldNotOpen),
            "byte {i}"
        );
    }
    let mut v2 = wrapped.clone();
    v2[0] = 2;
    for bad in [&v2[..], &wrapped[..76], &[]] {
        assert_eq!(
            key.unwrap(bad, &OWNER),
            Err(CryptoError::Malformed("password-wrapped key"))
        );
        assert_eq!(
            password_wrap_salt(bad),
            Err(CryptoError::Malformed("password-wrapped key"))
        );
    }
}

#[test]
fn a_password_change_or_a_recovery_code_is_another_wrap_of_the_same_key() {
    let pair = SenderKeyPair::generate();
    let old = wrap_private_key(
        pair.private_key(),
        "old password",
        &PassphraseSalt::generate(),
        &OWNER,
    )
    .expect("wraps");
    let recovery = wrap_private_key(
        pair.private_key(),
        "RC-7Q2M-XK4P-9TZD-WB3N",
        &PassphraseSalt::generate(),
        &OWNER,
    )
    .expect("wraps");
    // Password change: unwrap with the old password, wrap under the new one with a new salt.
    let private = unwrap_private_key(&old, "old password", &OWNER).expect("old opens");
    let new = wrap_private_key(
        &private,
        "new password",
        &PassphraseSalt::generate(),
        &OWNER,
    )
    .expect("wraps");
    assert_eq!(
        unwrap_private_key(&new, "new password", &OWNER).as_ref(),
        Ok(pair.private_key())
    );
    assert_eq!(
        unwrap_private_key(&new, "old password", &OWNER),
        Err(CryptoError::CouldNotOpen)
    );
    assert_eq!(
        unwrap_private_key(&recovery, "RC-7Q2M-XK4P-9TZD-WB3N", &OWNER).as_ref(),
        Ok(pair.private_key())
    );
    // Copies sealed before the change still open: the key pair did not change.
    let sealed = pair
        .public_key()
        .seal_dek(&Dek::generate(), &MSG, &OWNER)
        .expect("seals");
    let reopened = unwrap_private_key(&new, "new password", &OWNER).expect("opens");
    assert!(reopened.open_dek(&sealed, &MSG, &OWNER).is_ok());
}

#[test]
fn the_wrap_key_is_not_the_plain_argon2_output_of_the_password() {
    // A PHC string of the same password with the same salt and parameters holds
    // Argon2id(password, salt) without associated data; the wrap key must differ from it.
    use argon2::password_hash::PasswordHasher;
    let salt = PassphraseSalt::generate();
    let phc = argon2::Argon2::default()
        .hash_password_with_salt(b"same password", salt.as_bytes())
        .expect("hash");
    let plain = phc.hash.expect("hash output");
    let pair = SenderKeyPair::generate();
    let plain_key: [u8; 32] = plain.as_bytes().try_into().expect("32 bytes");
    // A wrap made under the plain Argon2 output must not open with the password.
    let forged = wrap_under_raw_key(&plain_key, &salt, pair.private_key(), &OWNER);
    assert_eq!(
        unwrap_private_key(&forged, "same password", &OWNER),
        Err(CryptoError::CouldNotOpen)
    );
    // Control: the same forgery under Argon2id with the sender-key label as associated data
    // (`SPEC.md` section 10.3) does open, so the refusal above is the label's doing.
    let params = argon2::ParamsBuilder::new()
        .m_cost(19 * 1024)
        .t_cost(2)
        .p_cost(1)
        .output_len(32)
        .data(argon2::AssociatedData::new(b"sealpost/v1/sender-key").expect("22 bytes"))
        .build()
        .expect("params");
    let mut labelled = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(b"same password", salt.as_bytes(), &mut labelled)
        .expect("argon2");
    let made = wrap_under_raw_key(&labelled, &salt, pair.private_key(), &OWNER);
    assert_eq!(
        unwrap_private_key(&made, "same password", &OWNER).as_ref(),
        Ok(pair.private_key())
    );
}

/// A password wrap of `private` made outside the crate, with `key` as the AES key and the
/// layout of `SPEC.md` section 10.3.
fn wrap_under_raw_key(
    key: &[u8; 32],
    salt: &PassphraseSalt,
    private: &sealpost_crypto::SenderPrivateKey,
    user_id: &Id,
) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    // The private key's bytes never leave the crate; a session wrap under a known session key
    // reveals them to this test.
    let session_key = SessionKey::generate();
    let sw = session_key.wrap(private, user_id, &SESSION);
    let mut aad = b"sealpost/v1/session-key".to_vec();
    aad.extend_from_slice(user_id);
    aad.extend_from_slice(&SESSION);
    let session_bytes = session_key_bytes(&session_key);
    let sk = Aes256Gcm::new((&session_bytes).into())
        .decrypt(
            &Nonce::from(<[u8; 12]>::try_from(&sw[1..13]).expect("nonce")),
            Payload {
                msg: &sw[13..],
                aad: &aad,
            },
        )
        .expect("session wrap opens");
    let nonce = [0x42u8; 12];
    let mut aad = b"sealpost/v1/sender-key".to_vec();
    aad.extend_from_slice(user_id);
    let ct = Aes256Gcm::new(key.into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &sk,
                aad: &aad,
            },
        )
        .expect("encrypts");
    [&[1u8][..], salt.as_bytes(), &nonce, &ct].concat()
}

/// The 32 bytes of a session key, from its text form.
fn session_key_bytes(key: &SessionKey) -> [u8; 32] {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key.encode().as_bytes())
        .expect("base64url");
    bytes.try_into().expect("32 bytes")
}

#[test]
fn an_overlong_password_is_refused_before_argon2() {
    let long = "x".repeat(MAX_PASSPHRASE_LEN + 1);
    let salt = PassphraseSalt::generate();
    assert!(matches!(
        PasswordKey::derive(&long, &salt),
        Err(CryptoError::Limit(_))
    ));
    assert!(PasswordKey::derive(&long[1..], &salt).is_ok());
}

#[test]
fn session_wrap_opens_only_with_its_cookie_user_session_and_bytes() {
    let pair = SenderKeyPair::generate();
    let session_key = SessionKey::generate();
    let wrapped = session_key.wrap(pair.private_key(), &OWNER, &SESSION);
    assert_eq!(wrapped.len(), SESSION_WRAPPED_KEY_LEN);
    let cookie = session_key.encode();
    let from_cookie = SessionKey::parse(&cookie).expect("cookie parses");
    assert_eq!(
        from_cookie.unwrap(&wrapped, &OWNER, &SESSION).as_ref(),
        Ok(pair.private_key())
    );

    let fail = |r| assert_eq!(r, Err(CryptoError::CouldNotOpen));
    // Another session's cookie, and this session's blob presented under another session id.
    fail(SessionKey::generate().unwrap(&wrapped, &OWNER, &SESSION));
    fail(session_key.unwrap(&wrapped, &OWNER, &OTHER_SESSION));
    fail(session_key.unwrap(&wrapped, &OTHER_OWNER, &SESSION));
    fail(session_key.unwrap(&wrapped, &OWNER, &SESSION[..15]));
    fail(session_key.unwrap(&wrapped, &OWNER, &[]));
    for (i, b) in each_flip(&wrapped).skip(1) {
        assert_eq!(
            session_key.unwrap(&b, &OWNER, &SESSION),
            Err(CryptoError::CouldNotOpen),
            "byte {i}"
        );
    }
    let mut v2 = wrapped.clone();
    v2[0] = 0;
    for bad in [&v2[..], &wrapped[..60], &[]] {
        assert_eq!(
            session_key.unwrap(bad, &OWNER, &SESSION),
            Err(CryptoError::Malformed("session-wrapped key"))
        );
    }
    // A password wrap is not a session wrap, nor the other way round.
    let pw = wrap_private_key(
        pair.private_key(),
        "pw",
        &PassphraseSalt::generate(),
        &OWNER,
    )
    .expect("wraps");
    assert!(matches!(
        session_key.unwrap(&pw, &OWNER, &SESSION),
        Err(CryptoError::Malformed(_))
    ));
    assert!(matches!(
        unwrap_private_key(&wrapped, "pw", &OWNER),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn session_key_text_form_is_canonical_only() {
    let key = SessionKey::generate();
    let text = key.encode();
    assert_eq!(text.len(), SessionKey::ENCODED_LEN);
    assert_eq!(SessionKey::parse(&text).expect("round trip"), key);
    // 43 characters carry 258 bits: a last character with a spare bit set is refused.
    let zero = "A".repeat(43);
    assert!(SessionKey::parse(&zero).is_ok());
    let spare = format!("{}B", "A".repeat(42));
    let plus = format!("{}+", &text[..42]);
    let padded = format!("{}=", text.as_str());
    let spaced = format!(" {}", &text[1..]);
    for bad in [
        "",
        &text[..42],
        spare.as_str(),
        plus.as_str(),
        padded.as_str(),
        spaced.as_str(),
    ] {
        assert_eq!(
            SessionKey::parse(bad),
            Err(CryptoError::Malformed("session key")),
            "{bad:?}"
        );
    }
}

#[test]
fn sender_secrets_never_print() {
    let pair = SenderKeyPair::generate();
    let dbg = format!(
        "{:?} {:?} {:?} {:?}",
        pair.private_key(),
        SessionKey::generate(),
        PasswordKey::derive("hunter2", &PassphraseSalt::generate()).expect("argon2"),
        pair,
    );
    assert!(!dbg.contains("hunter2"));
    assert_eq!(dbg.matches("<redacted>").count(), 4, "{dbg}");
    // The public key is not secret and prints.
    assert!(format!("{:?}", pair.public_key()).starts_with("SenderPublicKey("));
}

#[test]
fn key_pairs_are_distinct_and_consistent() {
    let a = SenderKeyPair::generate();
    let b = SenderKeyPair::generate();
    assert_ne!(a.public_key(), b.public_key());
    assert_ne!(a.private_key(), b.private_key());
    assert_eq!(a.private_key().public_key(), a.public_key());
    let public = a.public_key();
    assert_eq!(
        SenderPublicKey::from_slice(public.as_bytes()),
        Ok(public),
        "stored form round-trips"
    );
    assert_eq!(a.clone().into_private_key(), *a.private_key());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any DEK sealed for any message and owner opens for exactly those, and any single bit
    /// flipped after the version byte is refused.
    #[test]
    fn sealed_dek_round_trips_and_refuses_any_flip(
        seed in any::<[u8; 32]>(),
        msg in any::<[u8; 16]>(),
        owner in any::<[u8; 16]>(),
        pos in 1usize..SEALED_DEK_LEN,
        bit in 0u8..8,
    ) {
        let pair = SenderKeyPair::generate();
        let dek = Dek::generate_with(&mut Fixed(seed));
        let sealed = pair.public_key().seal_dek(&dek, &msg, &owner).expect("seals");
        prop_assert_eq!(pair.private_key().open_dek(&sealed, &msg, &owner), Ok(dek));
        let mut bad = sealed;
        bad[pos] ^= 1 << bit;
        prop_assert_eq!(
            pair.private_key().open_dek(&bad, &msg, &owner),
            Err(CryptoError::CouldNotOpen)
        );
    }

    /// Any session id of any length binds the session wrap; any flip is refused.
    #[test]
    fn session_wrap_round_trips_and_refuses_any_flip(
        session_id in proptest::collection::vec(any::<u8>(), 0..64),
        user in any::<[u8; 16]>(),
        pos in 1usize..SESSION_WRAPPED_KEY_LEN,
        bit in 0u8..8,
    ) {
        let pair = SenderKeyPair::generate();
        let key = SessionKey::generate();
        let wrapped = key.wrap(pair.private_key(), &user, &session_id);
        let opened = key.unwrap(&wrapped, &user, &session_id);
        prop_assert_eq!(opened.as_ref(), Ok(pair.private_key()));
        let mut longer = session_id.clone();
        longer.push(0);
        prop_assert_eq!(key.unwrap(&wrapped, &user, &longer), Err(CryptoError::CouldNotOpen));
        let mut bad = wrapped;
        bad[pos] ^= 1 << bit;
        prop_assert_eq!(key.unwrap(&bad, &user, &session_id), Err(CryptoError::CouldNotOpen));
    }
}

/// Hands out the same 32 bytes, for a DEK chosen by proptest.
struct Fixed([u8; 32]);

impl rand_core::TryRng for Fixed {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(u32::from_le_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3],
        ]))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(u64::from(self.try_next_u32()?))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for (d, s) in dst.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Fixed {}
