//! A service's own business codes: each inside the block the service was given (a: 11001–13000,
//! b: 13001–15000, c: 15001–17000, d: 17001–19000), none colliding with Appendix A's or
//! another of the service's. Checked when the service starts, so a wrong table never serves.

use tongban_core::code::{CodeRegistry, RegistryError};
use tongban_core::{ApiError, Code};

/// The codes a service answers besides Appendix A's.
#[derive(Clone, Debug)]
pub struct BusinessCodes {
    registry: CodeRegistry,
}

impl BusinessCodes {
    /// Registers `codes` (number, default message) in `block`; the first out-of-block or
    /// colliding code is the error.
    pub fn new(block: &str, codes: &[(u32, &str)]) -> Result<Self, RegistryError> {
        let mut registry = CodeRegistry::new();
        for (code, msg) in codes {
            registry.register(block, *code, msg, None)?;
        }
        Ok(Self { registry })
    }

    /// The refusal with `code` and its registered message. A code the service did not
    /// register is a bug in the service: it answers 10000 rather than an unknown code.
    pub fn error(&self, code: u32) -> ApiError {
        match self.registry.get(code) {
            Some(def) => ApiError::new(Code(code)).with_msg(def.msg.clone()),
            None => {
                tracing::error!(
                    code,
                    "A business code was answered without being registered."
                );
                ApiError::new(Code::BUSY)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_must_sit_in_their_block_and_not_collide() {
        let codes = BusinessCodes::new("a", &[(11001, "号源已满"), (11002, "已预约")]).expect("ok");
        assert_eq!(codes.error(11001).code, Code(11001));
        assert_eq!(codes.error(11001).message(), "号源已满");
        assert_eq!(codes.error(11999).code, Code::BUSY);
        assert!(matches!(
            BusinessCodes::new("a", &[(13001, "x")]),
            Err(RegistryError::OutOfBlock { code: 13001, .. })
        ));
        assert!(matches!(
            BusinessCodes::new("a", &[(11001, "x"), (11001, "y")]),
            Err(RegistryError::Collision { code: 11001, .. })
        ));
        // Appendix A's own codes in block d are taken.
        assert!(matches!(
            BusinessCodes::new("d", &[(17001, "x")]),
            Err(RegistryError::Collision { code: 17001, .. })
        ));
        assert!(matches!(
            BusinessCodes::new("z", &[(11001, "x")]),
            Err(RegistryError::UnknownBlock(_))
        ));
    }
}
