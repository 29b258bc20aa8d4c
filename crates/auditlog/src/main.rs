//! The `auditlog` command: a thin binary that wires the library crates together.

fn main() {
    println!("auditlog {}", env!("CARGO_PKG_VERSION"));
}
