//! Real `valkey-server` processes for integration tests.
