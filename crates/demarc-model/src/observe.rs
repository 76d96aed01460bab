//! What demarc can observe by itself, and how an observation maps to a duty.
//!
//! Each [`ObservationKind`] names one fact that a part of demarc can see (the gateway scanning
//! every request's input, discovery seeing a service in network logs, ...). Catalogs say which
//! kinds support which area (`observed_by` on an area), so no code knows area ids: the gateway
//! reports kinds, the catalog turns them into duties.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One kind of fact that demarc observes itself.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationKind {
    /// The gateway scanned every request's input with the application's guard policy.
    GatewayInputScan,
    /// The gateway scanned every answer (and every streamed event) with the policy.
    GatewayOutputScan,
    /// The gateway checked output against registered protected content or canary tokens.
    GatewayProtectedContent,
    /// The gateway enforced per-application keys, rate or token limits and request size bounds.
    GatewayAccessControl,
    /// The gateway grounded answers in the application's approved sources.
    GatewayGrounding,
    /// The gateway served requests for the application.
    GatewayTraffic,
    /// Network or identity logs show the application's service in use.
    Discovery,
}

impl ObservationKind {
    pub const ALL: [Self; 7] = [
        Self::GatewayInputScan,
        Self::GatewayOutputScan,
        Self::GatewayProtectedContent,
        Self::GatewayAccessControl,
        Self::GatewayGrounding,
        Self::GatewayTraffic,
        Self::Discovery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GatewayInputScan => "gateway-input-scan",
            Self::GatewayOutputScan => "gateway-output-scan",
            Self::GatewayProtectedContent => "gateway-protected-content",
            Self::GatewayAccessControl => "gateway-access-control",
            Self::GatewayGrounding => "gateway-grounding",
            Self::GatewayTraffic => "gateway-traffic",
            Self::Discovery => "discovery",
        }
    }

    /// The part of demarc that makes this observation (`gateway` or `discovery`).
    pub fn source(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            _ => "gateway",
        }
    }
}

impl std::fmt::Display for ObservationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ObservationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown observation kind `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in ObservationKind::ALL {
            assert_eq!(k.as_str().parse::<ObservationKind>(), Ok(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert!("gateway".parse::<ObservationKind>().is_err());
    }
}
