//! Permission levels of clause 6.2.2.1 a: every route declares one, the gateway enforces it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a caller must have done before a route answers: ordered, so `>=` means "at least".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthLevel {
    /// 不需要登入.
    Anonymous,
    /// 需要登入（实名）.
    RealName,
    /// 需要登入（实名）+ 人脸验证.
    FaceVerified,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown auth level {0:?}; expected anonymous, real_name or face_verified")]
pub struct UnknownAuthLevel(pub String);

// === impl AuthLevel ===

impl AuthLevel {
    pub const ALL: [AuthLevel; 3] = [Self::Anonymous, Self::RealName, Self::FaceVerified];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::RealName => "real_name",
            Self::FaceVerified => "face_verified",
        }
    }

    /// Whether a caller at level `self` may use a route that requires `required`.
    pub fn satisfies(self, required: AuthLevel) -> bool {
        self >= required
    }
}

impl fmt::Display for AuthLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthLevel {
    type Err = UnknownAuthLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownAuthLevel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered() {
        assert!(AuthLevel::Anonymous < AuthLevel::RealName);
        assert!(AuthLevel::RealName < AuthLevel::FaceVerified);
        assert!(AuthLevel::FaceVerified.satisfies(AuthLevel::RealName));
        assert!(!AuthLevel::RealName.satisfies(AuthLevel::FaceVerified));
        assert!(AuthLevel::Anonymous.satisfies(AuthLevel::Anonymous));
    }

    #[test]
    fn parse_and_display_round_trip() {
        for l in AuthLevel::ALL {
            assert_eq!(l.to_string().parse::<AuthLevel>(), Ok(l));
            assert_eq!(serde_json::to_string(&l).expect("json"), format!("\"{l}\""));
        }
        assert_eq!(
            "Anonymous".parse::<AuthLevel>(),
            Err(UnknownAuthLevel("Anonymous".into()))
        );
    }
}
