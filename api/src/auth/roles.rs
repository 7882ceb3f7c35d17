//! Roles and the principals that hold them.

use std::fmt;

/// What a principal may do. `admin` holds all five.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// List, search, read and export clients.
    ClientsRead,
    /// Register, update, rotate the secret of and delete clients.
    ClientsWrite,
    /// Read histories, as-of views, history exports and the global feed.
    AuditRead,
    /// Check a client secret (the identity service's token endpoint).
    SecretsVerify,
    /// Create, list and revoke the initial access tokens of dynamic client registration.
    RegistrationAdmin,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 5] = [
        Self::ClientsRead,
        Self::ClientsWrite,
        Self::AuditRead,
        Self::SecretsVerify,
        Self::RegistrationAdmin,
    ];

    /// The role's name in configuration and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientsRead => "clients:read",
            Self::ClientsWrite => "clients:write",
            Self::AuditRead => "audit:read",
            Self::SecretsVerify => "secrets:verify",
            Self::RegistrationAdmin => "registration:admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::ClientsRead => 1,
            Self::ClientsWrite => 2,
            Self::AuditRead => 4,
            Self::SecretsVerify => 8,
            Self::RegistrationAdmin => 16,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// Every role (`admin`).
    pub fn all() -> Self {
        Role::ALL.into_iter().collect()
    }

    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Adds every role of `other`.
    pub fn extend(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses a comma-separated list of role names; `admin` stands for all of them.
    ///
    /// # Errors
    /// A message naming the unknown role.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut roles = Self::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "admin" {
                roles.extend(Self::all());
                continue;
            }
            let role = Role::ALL
                .into_iter()
                .find(|r| r.as_str() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown role {name:?}: use admin, clients:read, clients:write, \
                         audit:read, secrets:verify or registration:admin"
                    )
                })?;
            roles.extend(Self(role.bit()));
        }
        Ok(roles)
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, role| bits | role.bit()))
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| self.contains(*r))
            .map(Role::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The authenticated caller, available to handlers as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recorded as the `actor` of the events it causes: the API key's name or the token's
    /// `sub`.
    pub name: String,
    /// What it may do.
    pub roles: Roles,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_stands_for_every_role() {
        assert_eq!(Roles::parse("admin"), Ok(Roles::all()));
        assert_eq!(
            Roles::all().to_string(),
            "clients:read,clients:write,audit:read,secrets:verify,registration:admin"
        );
    }

    #[test]
    fn role_lists_parse_and_unknown_roles_are_named() {
        let roles = Roles::parse("clients:read, audit:read").unwrap_or_default();
        assert!(roles.contains(Role::ClientsRead) && roles.contains(Role::AuditRead));
        assert!(!roles.contains(Role::ClientsWrite));
        assert!(Roles::parse("clients:admin").is_err_and(|e| e.contains("clients:admin")));
    }
}
