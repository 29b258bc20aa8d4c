//! Shared fixtures for the whole-system tests: stack addresses, fresh topics and databases.
