//! The schema a list of migrations yields, read from their statements, and the check that
//! each cluster migration yields what its single-server twin does.
//!
//! The twins cannot be generated from one another: applied migrations are checksummed, so
//! their text is frozen, and the cluster files differ in layout (`_local` tables under
//! Distributed ones) as well as in engines. Instead every migration prefix is read into a
//! [`Schema`] for both variants, the cluster one is mapped onto the single-server layout, and
//! the two must be equal: columns (name, type, codec, default, order), indexes, engines,
//! keys, TTLs, settings, views and materialized views.
//!
//! The reader knows the statement shapes the files use (one clause per line, `IF NOT EXISTS`
//! everywhere but for views that a later migration replaces or drops); a statement it does
//! not know fails the test rather than being skipped.

use std::collections::{BTreeMap, BTreeSet};

use super::{Migration, SchemaTarget};

/// What a list of migrations creates, by unqualified name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Schema {
    pub(crate) databases: BTreeSet<String>,
    pub(crate) tables: BTreeMap<String, Table>,
    /// View name to its select.
    pub(crate) views: BTreeMap<String, String>,
    pub(crate) materialized_views: BTreeMap<String, MaterializedView>,
}

/// A table as its statements leave it; every text is whitespace-normalized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    /// Name and definition (type, codec, default), in order.
    pub(crate) columns: Vec<(String, String)>,
    /// Name and definition, in order.
    pub(crate) indexes: Vec<(String, String)>,
    pub(crate) engine: String,
    /// `PARTITION BY`, `ORDER BY`, `TTL`, ... to their expressions.
    pub(crate) clauses: BTreeMap<String, String>,
    pub(crate) settings: BTreeSet<String>,
    /// The table a `CREATE TABLE ... AS other` took its columns from.
    pub(crate) copied_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MaterializedView {
    pub(crate) target: String,
    pub(crate) select: String,
}

/// Clauses after a table's column list, each on its own line(s) in the files.
const TABLE_CLAUSES: [&str; 7] = [
    "ENGINE",
    "PARTITION BY",
    "PRIMARY KEY",
    "ORDER BY",
    "SAMPLE BY",
    "TTL",
    "SETTINGS",
];

impl Schema {
    /// The schema `migrations` yield, applied in order for `target`.
    ///
    /// Panics on a statement it cannot read, or on a cluster statement without
    /// `ON CLUSTER` (it would reach one server only) or a single-server one with it.
    pub(crate) fn of(target: &SchemaTarget, migrations: &[Migration]) -> Schema {
        let mut schema = Schema::default();
        for migration in migrations {
            for statement in target.statements(migration) {
                let code = without_comments(&statement);
                let code = match &target.cluster {
                    Some(cluster) => {
                        let on_cluster = format!(" ON CLUSTER {cluster}");
                        assert!(
                            code.contains(&on_cluster),
                            "{}: a statement without{on_cluster}:\n{code}",
                            migration.name
                        );
                        code.replacen(&on_cluster, "", 1)
                    }
                    None => {
                        assert!(!code.contains("ON CLUSTER"), "{}: {code}", migration.name);
                        code
                    }
                };
                schema.apply(&target.database, &code, migration.name);
            }
        }
        schema
    }

    /// Every table, view and materialized view name.
    pub(crate) fn object_names(&self) -> impl Iterator<Item = String> + '_ {
        self.tables
            .keys()
            .chain(self.views.keys())
            .chain(self.materialized_views.keys())
            .cloned()
    }

    fn apply(&mut self, database: &str, code: &str, file: &str) {
        let unqualified = |name: &str| -> String {
            name.strip_prefix(database)
                .and_then(|name| name.strip_prefix('.'))
                .unwrap_or_else(|| panic!("{file}: {name} is not in database {database}"))
                .to_owned()
        };
        if let Some(name) = code.strip_prefix("CREATE DATABASE IF NOT EXISTS ") {
            self.databases.insert(name.trim().to_owned());
        } else if let Some(rest) = code.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            let (name, rest) = split_word(rest);
            let mut table = Table::default();
            let tail = if let Some(rest) = rest.strip_prefix("AS ") {
                let (source, tail) = split_word(rest);
                let source = unqualified(source);
                let copied = self
                    .tables
                    .get(&source)
                    .unwrap_or_else(|| panic!("{file}: {name} copies unknown {source}"));
                table.columns = copied.columns.clone();
                table.copied_from = Some(source);
                tail
            } else {
                let (body, tail) = parenthesized(rest)
                    .unwrap_or_else(|| panic!("{file}: no column list in {code}"));
                for item in split_top_level(body) {
                    let item = squeeze(&item);
                    if let Some(index) = item.strip_prefix("INDEX ") {
                        table.indexes.push(name_and_rest(index));
                    } else {
                        table.columns.push(name_and_rest(&item));
                    }
                }
                tail
            };
            table.read_clauses(tail, file);
            self.tables.insert(unqualified(name), table);
        } else if let Some(rest) = code
            .strip_prefix("CREATE VIEW IF NOT EXISTS ")
            .or_else(|| code.strip_prefix("CREATE OR REPLACE VIEW "))
        {
            let (name, rest) = split_word(rest);
            let select = rest
                .strip_prefix("AS")
                .unwrap_or_else(|| panic!("{file}: {code}"));
            let name = unqualified(name);
            // `IF NOT EXISTS` keeps a view that exists; `OR REPLACE` replaces it.
            if code.starts_with("CREATE OR REPLACE") || !self.views.contains_key(&name) {
                self.views.insert(name, squeeze(select));
            }
        } else if let Some(rest) = code.strip_prefix("DROP VIEW IF EXISTS ") {
            let (name, rest) = split_word(rest);
            assert!(rest.is_empty(), "{file}: {code}");
            let name = unqualified(name);
            self.views.remove(&name);
            self.materialized_views.remove(&name);
        } else if let Some(rest) = code.strip_prefix("CREATE MATERIALIZED VIEW IF NOT EXISTS ") {
            let (name, rest) = split_word(rest);
            let (target, select) = rest
                .strip_prefix("TO ")
                .map(split_word)
                .and_then(|(target, rest)| Some((target, rest.strip_prefix("AS")?)))
                .unwrap_or_else(|| panic!("{file}: {code}"));
            self.materialized_views.insert(
                unqualified(name),
                MaterializedView {
                    target: unqualified(target),
                    select: squeeze(select),
                },
            );
        } else if let Some(rest) = code.strip_prefix("ALTER TABLE ") {
            let (name, rest) = split_word(rest);
            let table = self
                .tables
                .get_mut(&unqualified(name))
                .unwrap_or_else(|| panic!("{file}: ALTER of unknown {name}"));
            for change in split_top_level(rest) {
                table.alter(&squeeze(&change), file);
            }
        } else {
            panic!("{file}: a statement the schema reader does not know:\n{code}");
        }
    }
}

impl Table {
    fn read_clauses(&mut self, tail: &str, file: &str) {
        let mut clauses: Vec<(&str, String)> = Vec::new();
        for line in tail.lines().map(str::trim).filter(|line| !line.is_empty()) {
            match TABLE_CLAUSES
                .iter()
                .find(|clause| line.starts_with(&format!("{clause} ")) || line == **clause)
            {
                Some(clause) => clauses.push((clause, line[clause.len()..].to_owned())),
                None => match clauses.last_mut() {
                    Some((_, text)) => {
                        text.push(' ');
                        text.push_str(line);
                    }
                    None => panic!("{file}: unexpected {line:?} after a column list"),
                },
            }
        }
        for (clause, text) in clauses {
            let text = squeeze(&text);
            match clause {
                "ENGINE" => {
                    self.engine = text.trim_start_matches("= ").to_owned();
                }
                "SETTINGS" => {
                    self.settings = split_top_level(&text)
                        .iter()
                        .map(|setting| squeeze(setting))
                        .collect();
                }
                _ => {
                    self.clauses.insert(clause.to_owned(), text);
                }
            }
        }
    }

    fn alter(&mut self, change: &str, file: &str) {
        if let Some(rest) = change.strip_prefix("ADD COLUMN IF NOT EXISTS ") {
            let (name, definition) = name_and_rest(rest);
            if !self.columns.iter().any(|(column, _)| *column == name) {
                self.columns.push((name, definition));
            }
        } else if let Some(rest) = change.strip_prefix("MODIFY COLUMN ") {
            let (name, definition) = name_and_rest(rest);
            let column = self
                .columns
                .iter_mut()
                .find(|(column, _)| *column == name)
                .unwrap_or_else(|| panic!("{file}: MODIFY of unknown column {name}"));
            column.1 = definition;
        } else if let Some(rest) = change.strip_prefix("DROP COLUMN IF EXISTS ") {
            self.columns.retain(|(column, _)| column != rest);
        } else if let Some(rest) = change.strip_prefix("ADD INDEX IF NOT EXISTS ") {
            let (name, definition) = name_and_rest(rest);
            if !self.indexes.iter().any(|(index, _)| *index == name) {
                self.indexes.push((name, definition));
            }
        } else if let Some(rest) = change.strip_prefix("DROP INDEX IF EXISTS ") {
            self.indexes.retain(|(index, _)| index != rest);
        } else if let Some(key) = change.strip_prefix("MODIFY ORDER BY ") {
            self.clauses.insert("ORDER BY".to_owned(), key.to_owned());
        } else {
            panic!("{file}: an ALTER the schema reader does not know: {change}");
        }
    }

    /// What must agree between the twins: settings that exist for one engine family only
    /// are left out (a replicated table deduplicates inserts by itself).
    fn comparable(&self) -> Table {
        let mut table = self.clone();
        table.settings.retain(|setting| {
            !setting.starts_with("non_replicated_deduplication_window ")
                && !setting.starts_with("replicated_deduplication_window ")
        });
        table
    }
}

/// The single-server schema that a cluster schema stands for, and what is wrong with the
/// cluster layout itself: every `<name>_local` table is replicated under its own path and
/// has a Distributed `<name>` over it with the same columns, and materialized views read and
/// write the shards' own tables (they fire on inserts into those only).
pub(crate) fn as_single_server(
    cluster: &Schema,
    database: &str,
    cluster_name: &str,
) -> (Schema, Vec<String>) {
    let mut problems = Vec::new();
    let mut single = Schema {
        databases: cluster.databases.clone(),
        views: cluster.views.clone(),
        ..Schema::default()
    };
    for (name, table) in &cluster.tables {
        if let Some(arguments) = table.engine.strip_prefix("Distributed") {
            let local = format!("{name}_local");
            let arguments = arguments
                .strip_prefix('(')
                .and_then(|arguments| arguments.strip_suffix(')'))
                .map(split_top_level)
                .unwrap_or_default();
            if arguments.len() != 4
                || arguments[..3] != [cluster_name, database, local.as_str()]
                || table.copied_from.as_deref() != Some(local.as_str())
            {
                problems.push(format!(
                    "Distributed {name} is not over {local}: AS {:?}, {}",
                    table.copied_from, table.engine
                ));
            }
            match cluster.tables.get(&local) {
                Some(local_table) if local_table.columns != table.columns => {
                    problems.push(format!(
                        "Distributed {name} has columns {:?}, but {local} has {:?}",
                        table.columns, local_table.columns
                    ));
                }
                _ => {}
            }
            continue;
        }
        let Some(base) = name.strip_suffix("_local") else {
            problems.push(format!(
                "{name} is neither a shard's `_local` table nor Distributed"
            ));
            continue;
        };
        if !cluster
            .tables
            .get(base)
            .is_some_and(|distributed| distributed.engine.starts_with("Distributed("))
        {
            problems.push(format!("{name} has no Distributed table {base} over it"));
        }
        let mut twin = table.clone();
        twin.engine = match unreplicated_engine(&table.engine, database, name) {
            Ok(engine) => engine,
            Err(problem) => {
                problems.push(problem);
                table.engine.clone()
            }
        };
        single.tables.insert(base.to_owned(), twin);
    }
    let local_tables: Vec<&str> = cluster
        .tables
        .keys()
        .map(String::as_str)
        .filter(|name| name.ends_with("_local"))
        .collect();
    for (name, view) in &cluster.materialized_views {
        let Some(target) = view.target.strip_suffix("_local") else {
            problems.push(format!(
                "materialized view {name} writes {}, not a shard's own table",
                view.target
            ));
            continue;
        };
        // The selects are whitespace-normalized, so a table is a word of its own.
        let select = view
            .select
            .split(' ')
            .map(|word| {
                word.strip_prefix(database)
                    .and_then(|name| name.strip_prefix('.'))
                    .filter(|name| local_tables.iter().any(|local| local == name))
                    .and_then(|name| name.strip_suffix("_local"))
                    .map_or_else(|| word.to_owned(), |base| format!("{database}.{base}"))
            })
            .collect::<Vec<_>>()
            .join(" ");
        let reads = |select: &str| -> Vec<String> {
            select
                .split(&format!("FROM {database}."))
                .skip(1)
                .map(|rest| split_word(rest).0.to_owned())
                .collect()
        };
        for read in reads(&view.select) {
            if !read.ends_with("_local") {
                problems.push(format!(
                    "materialized view {name} reads {read}, so inserts into the shards' own \
                     tables would not feed it"
                ));
            }
        }
        single.materialized_views.insert(
            name.clone(),
            MaterializedView {
                target: target.to_owned(),
                select,
            },
        );
    }
    (single, problems)
}

/// `ReplicatedX('/clickhouse/tables/{shard}/db/name', '{replica}'[, args])` as `X[(args)]`.
fn unreplicated_engine(engine: &str, database: &str, table: &str) -> Result<String, String> {
    let problem = || format!("{table} is not replicated under its own path: {engine}");
    let rest = engine.strip_prefix("Replicated").ok_or_else(problem)?;
    let (family, arguments) = rest.split_once('(').ok_or_else(problem)?;
    let arguments = split_top_level(arguments.strip_suffix(')').ok_or_else(problem)?);
    let path = format!("'/clickhouse/tables/{{shard}}/{database}/{table}'");
    if arguments.len() < 2 || arguments[0] != path || arguments[1] != "'{replica}'" {
        return Err(problem());
    }
    Ok(match &arguments[2..] {
        [] => family.to_owned(),
        rest => format!("{family}({})", rest.join(", ")),
    })
}

/// Where the single-server schema and the cluster one (as single-server) differ, one line
/// per object.
pub(crate) fn differences(single: &Schema, cluster: &Schema) -> Vec<String> {
    fn compare<T: PartialEq + std::fmt::Debug>(
        kind: &str,
        single: &BTreeMap<String, T>,
        cluster: &BTreeMap<String, T>,
        out: &mut Vec<String>,
    ) {
        let names: BTreeSet<&String> = single.keys().chain(cluster.keys()).collect();
        for name in names {
            let (single, cluster) = (single.get(name), cluster.get(name));
            if single != cluster {
                out.push(format!(
                    "{kind} {name}:\n  single-server: {single:?}\n  cluster:       {cluster:?}"
                ));
            }
        }
    }
    let mut out = Vec::new();
    if single.databases != cluster.databases {
        out.push(format!(
            "databases: {:?} vs {:?}",
            single.databases, cluster.databases
        ));
    }
    let comparable = |schema: &Schema| -> BTreeMap<String, Table> {
        schema
            .tables
            .iter()
            .map(|(name, table)| (name.clone(), table.comparable()))
            .collect()
    };
    compare("table", &comparable(single), &comparable(cluster), &mut out);
    compare("view", &single.views, &cluster.views, &mut out);
    compare(
        "materialized view",
        &single.materialized_views,
        &cluster.materialized_views,
        &mut out,
    );
    out
}

/// The statement without `--` comments and blank lines.
fn without_comments(statement: &str) -> String {
    statement
        .lines()
        .map(|line| {
            line.split_once("--")
                .map_or(line, |(code, _)| code)
                .trim_end()
        })
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first word and the rest, trimmed.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], text[end..].trim())
}

fn name_and_rest(text: &str) -> (String, String) {
    let (name, rest) = split_word(text);
    (name.to_owned(), rest.to_owned())
}

/// The text inside the first parentheses of `text`, and what follows them.
fn parenthesized(text: &str) -> Option<(&str, &str)> {
    let open = text.find('(')?;
    let mut depth = 0;
    for (at, character) in text.char_indices().skip_while(|(at, _)| *at < open) {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&text[open + 1..at], &text[at + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` split at commas outside parentheses and quotes, each part trimmed.
fn split_top_level(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut depth, mut quoted) = (0_i32, false);
    for character in text.chars() {
        match character {
            '\'' => quoted = !quoted,
            '(' | '[' if !quoted => depth += 1,
            ')' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}

#[cfg(test)]
#[path = "twins_tests.rs"]
mod tests;
