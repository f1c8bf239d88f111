//! Dev-only helpers for rollouts-rs tests: fixture builders and an in-memory simulator.
