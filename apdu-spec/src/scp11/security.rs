//! What a command arrived through ([`Security`], stamped by the card runtime) and what it needs
//! ([`Requirement`], declared by each typed command). One check, [`Requirement::check`], serves every command on
//! the card; hosts read the same requirements to open the right session before they send.

use super::Variant;
use super::cert::Role;
use super::session::SecurityLevel;
use crate::StatusWord;

/// How the command being processed reached the card: the runtime stamps it after verifying (and decrypting)
/// the command; `None` stands for a plain command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Security {
    /// SCP11a (the OCE proved a certificate) or SCP11b (anonymous OCE).
    pub variant: Variant,
    /// The protections the session applies.
    pub level: SecurityLevel,
    /// The role in the OCE's leaf certificate (SCP11a); `None` for SCP11b or a certificate without a role.
    pub role: Option<Role>,
}

impl Security {
    /// Whether the OCE authenticated with a certificate carrying `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.variant == Variant::A && self.role == Some(role)
    }
}

/// When a command may come without a secure channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plain {
    /// Always (the session, if any, must still meet the role and level).
    Allowed,
    /// Only while the card is not yet issued (OP_READY, INITIALIZED): the factory personalizes in the clear.
    BeforeIssuance,
    /// Never.
    Refused,
}

/// What a command needs of the channel it arrives through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The role the OCE's certificate must carry (which implies SCP11a), if any.
    pub role: Option<Role>,
    /// Protections the session must apply at least ([`SecurityLevel`] bits; 0 for none).
    pub level: u8,
    /// Whether a plain command will do.
    pub plain: Plain,
}

impl Requirement {
    /// No requirement: plain, or any session.
    pub const NONE: Self = Self {
        role: None,
        level: 0,
        plain: Plain::Allowed,
    };

    /// An SCP11a session whose OCE has `role`, with at least `level`; never plain.
    pub const fn session(role: Role, level: u8) -> Self {
        Self {
            role: Some(role),
            level,
            plain: Plain::Refused,
        }
    }

    /// The same, but plain while the card is not issued.
    pub const fn before_issuance_plain(self) -> Self {
        Self {
            plain: Plain::BeforeIssuance,
            ..self
        }
    }

    /// Whether a command that arrived through `security` may run on a card that is `pre_issuance` or not;
    /// 6982 otherwise.
    pub fn check(&self, security: Option<Security>, pre_issuance: bool) -> Result<(), StatusWord> {
        let allowed = match security {
            None => match self.plain {
                Plain::Allowed => true,
                Plain::BeforeIssuance => pre_issuance,
                Plain::Refused => false,
            },
            Some(security) => {
                self.role.is_none_or(|role| security.has_role(role))
                    && security.level.has(self.level)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
        }
    }

    /// A one-line description for documentation and error messages, e.g.
    /// `SCP11a, role issuer, C-MAC C-DEC; plain before issuance`.
    pub fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        if self.role.is_none() && self.level == 0 {
            return out.write_str(match self.plain {
                Plain::Refused => "any secure channel",
                _ => "none",
            });
        }
        out.write_str("SCP11")?;
        if let Some(role) = self.role {
            write!(out, "a, role {}", role.name())?;
        }
        for (bit, name) in [
            (SecurityLevel::C_MAC, "C-MAC"),
            (SecurityLevel::C_DECRYPTION, "C-DEC"),
            (SecurityLevel::R_MAC, "R-MAC"),
            (SecurityLevel::R_ENCRYPTION, "R-ENC"),
        ] {
            if self.level & bit != 0 {
                write!(out, ", {name}")?;
            }
        }
        match self.plain {
            Plain::Allowed => out.write_str("; or plain"),
            Plain::BeforeIssuance => out.write_str("; plain before issuance"),
            Plain::Refused => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: Security = Security {
        variant: Variant::A,
        level: SecurityLevel::MAC,
        role: Some(Role::Issuer),
    };

    #[test]
    fn checks() {
        let content =
            Requirement::session(Role::Issuer, SecurityLevel::C_MAC).before_issuance_plain();
        assert_eq!(content.check(None, true), Ok(()));
        assert!(content.check(None, false).is_err());
        assert_eq!(content.check(Some(ISSUER), false), Ok(()));
        let anonymous = Security {
            variant: Variant::B,
            role: None,
            ..ISSUER
        };
        assert!(content.check(Some(anonymous), true).is_err());
        let key = Requirement::session(
            Role::Issuer,
            SecurityLevel::C_MAC | SecurityLevel::C_DECRYPTION,
        );
        assert!(key.check(Some(ISSUER), true).is_err());
        let full = Security {
            level: SecurityLevel::FULL,
            ..ISSUER
        };
        assert_eq!(key.check(Some(full), false), Ok(()));
        assert_eq!(Requirement::NONE.check(None, false), Ok(()));
        assert_eq!(Requirement::NONE.check(Some(anonymous), false), Ok(()));
    }
}
