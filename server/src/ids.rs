//! Typed ids of the things a pickup is about: a message, one of its recipients, and the
//! recipient's pickup id (the public part of the link).
//!
//! Message and recipient ids are UUIDv7, stored as hyphenated text; their 16 bytes are the
//! associated data the envelope binds every key and chunk to (`crypto/SPEC.md`). A pickup id is
//! 16 random bytes in unpadded base64url (22 characters). Each is parsed once, where it enters
//! (a URL, a stored row), so no function past that point takes a bare `&str` that might be any
//! of them.

use std::fmt;
use std::str::FromStr;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Sqlite, Type};
use uuid::Uuid;

/// A UUID id stored as text, one type per kind of thing it names.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The 16 bytes the envelope binds keys and chunks to.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        text_column!($name);
    };
}

/// Store a type as a TEXT column through its `Display` and `FromStr`.
macro_rules! text_column {
    ($name:ident) => {
        impl Type<Sqlite> for $name {
            fn type_info() -> SqliteTypeInfo {
                <String as Type<Sqlite>>::type_info()
            }
        }

        impl Encode<'_, Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut SqliteArgumentsBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <String as Encode<'_, Sqlite>>::encode(self.to_string(), buf)
            }
        }

        impl<'r> Decode<'r, Sqlite> for $name {
            fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
                text.parse()
                    .map_err(|e| format!("{} is not a {}: {e}", text, stringify!($name)).into())
            }
        }
    };
}

uuid_id!(
    /// A message: one submission, whatever the number of recipients.
    MessageId
);
uuid_id!(
    /// One recipient of one message.
    RecipientId
);

/// The public id in a recipient's link (`/p/{pickup_id}`): 16 random bytes, base64url.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PickupId(String);

/// Text that is not a pickup id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a pickup id")]
pub struct NotAPickupId;

impl PickupId {
    const LEN: usize = 22;

    /// A fresh random pickup id.
    pub fn generate() -> Self {
        use base64::Engine as _;
        Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sealpost_crypto::random_bytes::<16>()),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PickupId {
    type Err = NotAPickupId;

    /// Accepts exactly the form [`PickupId::generate`] makes; anything else (another length,
    /// padding, characters outside base64url) is refused before any lookup.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = s.len() == Self::LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(NotAPickupId)
        }
    }
}

impl fmt::Display for PickupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PickupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PickupId({})", self.0)
    }
}

text_column!(PickupId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_ids_round_trip_and_odd_text_is_refused() {
        let id = PickupId::generate();
        assert_eq!(id.as_str().len(), 22);
        assert_eq!(id.as_str().parse::<PickupId>(), Ok(id.clone()));
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAA+/",
            "AAAAAAAAAAAAAAAAAAAAA/",
            "AAAAAAAAAAAAAAAAAAAAAAA",
            "ÄAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(bad.parse::<PickupId>(), Err(NotAPickupId), "{bad:?}");
        }
    }

    #[test]
    fn uuid_ids_print_as_stored_and_parse_back() {
        let id = MessageId::generate();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<MessageId>().ok(), Some(id));
        assert_eq!(id.as_bytes(), Uuid::from(id).as_bytes());
        assert!("not-a-uuid".parse::<RecipientId>().is_err());
    }
}
