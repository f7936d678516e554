//! CleverTap accounts, their secrets, and where their Upload API lives.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A CleverTap account id, e.g. `W44-Z4K-K65Z`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

/// Why a string is not an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountIdError {
    /// The id is empty.
    #[error("account id is empty")]
    Empty,
    /// The id has characters other than letters, digits and `-`.
    #[error("account id {0:?} may only hold letters, digits and '-'")]
    BadCharacter(String),
}

impl AccountId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = AccountIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(AccountIdError::Empty);
        }
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AccountIdError::BadCharacter(value));
        }
        Ok(AccountId(trimmed.to_owned()))
    }
}

impl TryFrom<&str> for AccountId {
    type Error = AccountIdError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        AccountId::try_from(value.to_owned())
    }
}

impl From<AccountId> for String {
    fn from(value: AccountId) -> Self {
        value.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account passcode. It has no `Display`, its `Debug` is redacted, and it serializes as
/// `"<redacted>"`: a passcode cannot reach a log, an error or a report by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Passcode(String);

impl Passcode {
    /// Wraps a passcode.
    pub fn new(secret: impl Into<String>) -> Self {
        Passcode(secret.into())
    }

    /// The secret itself, for the one place that needs it: the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passcode(<redacted>)")
    }
}

impl Serialize for Passcode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Any other secret (an auth password, a bearer token): redacted like a [`Passcode`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for comparing it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a secret shows as wherever it is printed.
pub const REDACTED: &str = "<redacted>";

/// An account and the passcode to load into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account.
    pub account_id: AccountId,
    /// Its passcode.
    pub passcode: Passcode,
}

/// A CleverTap data-centre region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// Europe (`eu1.api.clevertap.com`).
    Eu1,
    /// India (`in1.api.clevertap.com`).
    In1,
    /// Singapore (`sg1.api.clevertap.com`).
    Sg1,
    /// United States (`us1.api.clevertap.com`).
    Us1,
    /// Indonesia (`aps3.api.clevertap.com`).
    Aps3,
    /// Middle East (`mec1.api.clevertap.com`).
    Mec1,
}

impl Region {
    /// The Upload API's base URL for this region, without a trailing slash.
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Eu1 => "https://eu1.api.clevertap.com",
            Region::In1 => "https://in1.api.clevertap.com",
            Region::Sg1 => "https://sg1.api.clevertap.com",
            Region::Us1 => "https://us1.api.clevertap.com",
            Region::Aps3 => "https://aps3.api.clevertap.com",
            Region::Mec1 => "https://mec1.api.clevertap.com",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passcode_never_prints() {
        let p = Passcode::new("IAA-ZAB-GEKL");
        let c = Credentials {
            account_id: AccountId::try_from("W44-Z4K-K65Z").unwrap(),
            passcode: p.clone(),
        };
        assert!(!format!("{c:?}").contains("IAA-ZAB-GEKL"));
        assert!(!serde_json::to_string(&p).unwrap().contains("IAA"));
        assert_eq!(p.expose(), "IAA-ZAB-GEKL");
    }

    #[test]
    fn account_ids_are_checked() {
        assert_eq!(
            AccountId::try_from(" W44-Z4K-K65Z ").unwrap().as_str(),
            "W44-Z4K-K65Z"
        );
        assert_eq!(AccountId::try_from(""), Err(AccountIdError::Empty));
        assert!(matches!(
            AccountId::try_from("a/b"),
            Err(AccountIdError::BadCharacter(_))
        ));
    }

    #[test]
    fn regions_map_to_hosts() {
        let r: Region = serde_json::from_str("\"aps3\"").unwrap();
        assert_eq!(r.base_url(), "https://aps3.api.clevertap.com");
    }
}
