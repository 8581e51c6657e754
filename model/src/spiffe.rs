//! SPIFFE IDs as meshtwin uses them:
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`.

use std::fmt;
use std::str::FromStr;

/// A workload identity carried in a certificate's URI SAN.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: Box<str>,
    namespace: Box<str>,
    service: Box<str>,
}

/// Why a string is not a meshtwin SPIFFE ID.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpiffeIdError {
    #[error("`{0}` does not start with spiffe://")]
    Scheme(String),
    #[error("`{0}` is not of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service>")]
    Shape(String),
    #[error("`{value}` has an invalid {part}: use lowercase letters, digits, `-`, `_` and `.`")]
    Part { value: String, part: &'static str },
}

fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 253
        && part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

impl SpiffeId {
    /// Builds an ID from its parts, checking each.
    pub fn new(trust_domain: &str, namespace: &str, service: &str) -> Result<Self, SpiffeIdError> {
        for (value, part) in [
            (trust_domain, "trust domain"),
            (namespace, "namespace"),
            (service, "service name"),
        ] {
            if !valid_part(value) {
                return Err(SpiffeIdError::Part {
                    value: value.to_owned(),
                    part,
                });
            }
        }
        Ok(Self {
            trust_domain: trust_domain.into(),
            namespace: namespace.into(),
            service: service.into(),
        })
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn service(&self) -> &str {
        &self.service
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| SpiffeIdError::Scheme(s.to_owned()))?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [domain, "ns", namespace, "sa", service] => Self::new(domain, namespace, service),
            _ => Err(SpiffeIdError::Shape(s.to_owned())),
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id: SpiffeId = "spiffe://bank.example/ns/prod/sa/payments".parse().unwrap();
        assert_eq!(id.trust_domain(), "bank.example");
        assert_eq!(id.namespace(), "prod");
        assert_eq!(id.service(), "payments");
        assert_eq!(id.to_string(), "spiffe://bank.example/ns/prod/sa/payments");
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "https://bank.example/ns/prod/sa/payments",
            "spiffe://bank.example/prod/payments",
            "spiffe://bank.example/ns/prod/sa/payments/extra",
            "spiffe://bank.example/ns//sa/payments",
            "spiffe://Bank/ns/prod/sa/payments",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad} was accepted");
        }
    }
}
