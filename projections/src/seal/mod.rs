//! The sealed log: every event, in global-position order, a leaf of a Merkle tree (RFC 9162)
//! whose signed heads let an auditor prove, without trusting the registry, that the history
//! is complete and unaltered.

pub mod canonical;
pub mod merkle;
