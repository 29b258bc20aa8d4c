//! The event as a row of the ClickHouse table: the column list the ingester writes and the
//! query side reads, defined once and checked against the DDL in `schemas/clickhouse/`.

/// The columns of `audit_logs`, in the DDL's order (`schemas/clickhouse/0001_audit_logs.sql`).
///
/// The actor and organization are flattened (`user_*`, `organization_*`; nil ids and empty
/// strings when absent), `diff` and `additional_fields` are JSON text, `build_reason` is `''`
/// when the event has none.
pub const COLUMNS: [&str; 22] = [
    "id",
    "time",
    "request_id",
    "organization_id",
    "organization_name",
    "organization_display_name",
    "organization_icon",
    "user_id",
    "user_username",
    "user_email",
    "user_name",
    "ip",
    "user_agent",
    "resource_type",
    "resource_id",
    "resource_target",
    "resource_icon",
    "action",
    "diff",
    "status_code",
    "additional_fields",
    "build_reason",
];

/// Where a row came from: its Kafka partition and offset (migration 0005; `-1` for rows
/// written before it). Written by the ingester after [`COLUMNS`], read by the verifier.
pub const SOURCE_COLUMNS: [&str; 2] = ["source_partition", "source_offset"];

/// The columns the ingester writes and a row's canonical stored form covers, in order:
/// [`COLUMNS`] then [`SOURCE_COLUMNS`] (`docs/integrity.md`).
pub fn stored_columns() -> Vec<&'static str> {
    COLUMNS
        .iter()
        .chain(SOURCE_COLUMNS.iter())
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{COLUMNS, SOURCE_COLUMNS};

    /// The column names of the first `CREATE TABLE ... ( ... )` in a DDL file, in order.
    fn ddl_columns(ddl: &str) -> Vec<String> {
        let body_start = ddl.find("CREATE TABLE").expect("a CREATE TABLE");
        let mut columns = Vec::new();
        let mut inside = false;
        for line in ddl[body_start..].lines() {
            let line = line.trim();
            if !inside {
                inside = line == "(";
                continue;
            }
            if line.starts_with(')') {
                break;
            }
            if line.is_empty() || line.starts_with("--") || line.starts_with("INDEX ") {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            columns.push(name.to_owned());
        }
        columns
    }

    #[test]
    fn the_column_list_is_the_ddl_column_list() {
        for (file, ddl) in [
            (
                "0001_audit_logs.sql",
                include_str!("../../../schemas/clickhouse/0001_audit_logs.sql"),
            ),
            (
                "cluster/0001_audit_logs.sql",
                include_str!("../../../schemas/clickhouse/cluster/0001_audit_logs.sql"),
            ),
        ] {
            assert_eq!(ddl_columns(ddl), COLUMNS, "schemas/clickhouse/{file}");
        }
    }

    #[test]
    fn the_source_columns_are_the_ones_migration_5_adds() {
        for ddl in [
            include_str!("../../../schemas/clickhouse/0005_integrity.sql"),
            include_str!("../../../schemas/clickhouse/cluster/0005_integrity.sql"),
        ] {
            for column in SOURCE_COLUMNS {
                assert!(
                    ddl.contains(&format!("ADD COLUMN IF NOT EXISTS {column} ")),
                    "{column}"
                );
            }
        }
    }
}
