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
    use super::{COLUMNS, stored_columns};
    use crate::migrate::twins::Schema;
    use crate::{CLUSTER_MIGRATIONS, MIGRATIONS, SchemaTarget};

    /// The base table's column names once `applied` migrations ran, in order.
    fn ddl_columns(cluster: Option<&str>, applied: usize) -> Vec<String> {
        let target = SchemaTarget {
            database: "db".into(),
            table: "t".into(),
            retention_days: None,
            cluster: cluster.map(str::to_owned),
        };
        let (migrations, table) = match cluster {
            Some(_) => (CLUSTER_MIGRATIONS, "t_local"),
            None => (MIGRATIONS, "t"),
        };
        Schema::of(&target, &migrations[..applied]).tables[table]
            .columns
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }

    #[test]
    fn the_column_list_is_the_ddl_column_list() {
        for cluster in [None, Some("c")] {
            assert_eq!(ddl_columns(cluster, 1), COLUMNS, "{cluster:?}");
        }
    }

    #[test]
    fn the_source_columns_are_the_ones_migration_5_adds() {
        for cluster in [None, Some("c")] {
            assert_eq!(ddl_columns(cluster, 4), COLUMNS, "{cluster:?}");
            assert_eq!(ddl_columns(cluster, 5), stored_columns(), "{cluster:?}");
        }
    }
}
