//! Trust for the federation: today the PKI of the nodes (a federation root, and per node a TLS
//! certificate and a signing certificate that name its segment); later the trust list, document
//! signatures, the trusted third party and time stamps.

pub mod files;
pub mod pki;
