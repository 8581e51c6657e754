//! The topologies shipped with meshtwin, by name. Each is a data file in
//! `datasets/topologies/`, built from the application's public call graph.

use super::{Topology, TopologyError};

/// Name and file text of every bundled topology.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "online-boutique",
        include_str!("../../topologies/online_boutique.toml"),
    ),
    ("sock-shop", include_str!("../../topologies/sock_shop.toml")),
    (
        "train-ticket",
        include_str!("../../topologies/train_ticket.toml"),
    ),
    (
        "social-network",
        include_str!("../../topologies/social_network.toml"),
    ),
    (
        "hotel-reservation",
        include_str!("../../topologies/hotel_reservation.toml"),
    ),
    ("bank", include_str!("../../topologies/bank.toml")),
];

/// The bundled topology called `name`, parsed.
pub fn bundled(name: &str) -> Result<Topology, TopologyError> {
    let (_, text) = BUNDLED.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        TopologyError(vec![format!(
            "no bundled topology {name:?}; there are: {}",
            names().join(", ")
        )])
    })?;
    Topology::from_toml(text)
}

pub fn names() -> Vec<&'static str> {
    BUNDLED.iter().map(|(name, _)| *name).collect()
}
