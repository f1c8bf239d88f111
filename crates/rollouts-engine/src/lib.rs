//! The pure strategy engine of rollouts-rs.

pub mod duration;
pub mod intstr;
pub mod replicas;
