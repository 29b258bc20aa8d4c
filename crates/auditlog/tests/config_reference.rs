//! `docs/configuration.md` cannot drift from the binary.
//!
//! - Every long flag and `AUDITLOG_*` variable that `auditlog <subcommand> --help` prints is
//!   in the doc: global options in "Global options", a subcommand's own flags in the
//!   section headed with its name.
//! - Every `--flag` and `AUDITLOG_*` the doc mentions exists in some help output, so a
//!   removed flag does not linger in the doc.
//! - Every `pub` field of the TOML structs in `crates/auditlog/src/config.rs` is a
//!   `section.key` in the doc's tables, and every key in the tables exists in a struct.
//! - The doc's example file (its ```toml block) parses and uses only known keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

/// The TOML structs of `config.rs` and the section each one is: `KafkaFile` is `[kafka]`.
const TOML_STRUCTS: &[(&str, &str)] = &[
    ("KafkaFile", "kafka"),
    ("ClickHouseFile", "clickhouse"),
    ("ApiFile", "api"),
    ("TokenFile", "api.tokens"),
    ("IngestFile", "ingest"),
    ("ProducerFile", "producer"),
    ("RetentionFile", "retention"),
    ("IntegrityFile", "integrity"),
    ("LogFile", "log"),
];

/// Keys whose value is a free-form table or an array of tables described by another struct.
const OPEN_TABLES: &[&str] = &["kafka.properties"];
const TABLE_ARRAYS: &[&str] = &["api.tokens"];

/// The subcommands, as arguments, and the heading of their section in the doc.
const SUBCOMMANDS: &[(&[&str], &str)] = &[
    (&["migrate"], "`auditlog migrate`"),
    (&["ingest"], "`auditlog ingest`"),
    (&["stream"], "`auditlog stream`"),
    (&["stream", "backfill"], "`auditlog stream backfill`"),
    (&["generate"], "`auditlog generate`"),
    (&["query"], "`auditlog query`"),
    (&["serve"], "`auditlog serve`"),
    (&["dlq", "inspect"], "`auditlog dlq inspect`"),
    (&["dlq", "replay"], "`auditlog dlq replay`"),
    (&["access-ddl"], "`auditlog access-ddl`"),
    (&["keygen"], "`auditlog keygen`"),
    (&["verify"], "`auditlog verify`"),
];
const GLOBAL_HEADING: &str = "Global options";

/// clap's own flags, documented by clap, not by us.
const BUILTIN_FLAGS: &[&str] = &["--help", "--version"];

fn workspace_file(relative: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    (path, text)
}

fn doc() -> String {
    workspace_file("docs/configuration.md").1
}

/// `auditlog <args> --help`, with no `AUDITLOG_*` of the test's environment leaking in.
fn help(args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auditlog"));
    command.args(args).arg("--help").env("COLUMNS", "400");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AUDITLOG_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("running auditlog --help");
    assert!(
        output.status.success(),
        "`auditlog {} --help` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

fn is_word_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Every `--long-flag` in the text (not `--` alone, not part of a longer word).
fn long_flags(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut flags = BTreeSet::new();
    let mut index = 0;
    while let Some(found) = text[index..].find("--") {
        let start = index + found;
        let preceded = start > 0 && is_word_char(bytes[start - 1]);
        let mut end = start + 2;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'-')
        {
            end += 1;
        }
        let flag = text[start..end].trim_end_matches('-');
        if !preceded && flag.len() > 2 && bytes[start + 2].is_ascii_lowercase() {
            flags.insert(flag.to_owned());
        }
        index = end.max(start + 2);
    }
    flags
}

/// Whether `name` is in `text` as a whole flag or variable name (`--batch-bytes` does
/// not count as `--batch`).
fn has_word(text: &str, name: &str) -> bool {
    long_flags(text).contains(name) || env_vars(text).contains(name)
}

/// Every `AUDITLOG_<NAME>` in the text.
fn env_vars(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut index = 0;
    while let Some(found) = text[index..].find("AUDITLOG_") {
        let start = index + found;
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |offset| start + offset);
        // `AUDITLOG_*` (the family, in prose) is no name.
        if end > start + "AUDITLOG_".len() {
            names.insert(text[start..end].to_owned());
        }
        index = end;
    }
    names
}

/// The text of the `## ` section whose heading contains `heading`.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let mut start = None;
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        if line.starts_with("## ") {
            if let Some(begin) = start {
                return &doc[begin..offset];
            }
            if line.contains(heading) {
                start = Some(offset);
            }
        }
        offset += line.len();
    }
    match start {
        Some(begin) => &doc[begin..],
        None => panic!("docs/configuration.md has no `## ` section headed {heading:?}"),
    }
}

/// The flags (first column) and environment variables (second column) of the table rows
/// in a section of the doc, as one text to search.
fn table_columns(section: &str) -> (String, String) {
    let mut flags = String::new();
    let mut envs = String::new();
    for line in section.lines().filter(|line| line.starts_with('|')) {
        let mut cells = line.split('|').skip(1);
        flags.push_str(cells.next().unwrap_or_default());
        flags.push('\n');
        envs.push_str(cells.next().unwrap_or_default());
        envs.push('\n');
    }
    (flags, envs)
}

/// The `pub <name>:` fields of `pub struct <name> {` in config.rs, by struct name.
fn toml_struct_fields(source: &str) -> BTreeMap<String, Vec<String>> {
    let mut structs = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in source.lines() {
        let line = line.trim();
        if let Some((name, fields)) = current.take() {
            if line == "}" {
                structs.insert(name, fields);
                continue;
            }
            let mut fields = fields;
            if let Some(rest) = line.strip_prefix("pub ")
                && let Some((field, _)) = rest.split_once(':')
            {
                fields.push(field.trim().to_owned());
            }
            current = Some((name, fields));
        } else if let Some(rest) = line.strip_prefix("pub struct ")
            && let Some(name) = rest.strip_suffix(" {")
            && name.ends_with("File")
        {
            current = Some((name.trim().to_owned(), Vec::new()));
        }
    }
    structs
}

/// The `section.key`s the code accepts, from the text of config.rs.
fn code_toml_keys() -> BTreeSet<String> {
    let (path, source) = workspace_file("crates/auditlog/src/config.rs");
    let structs = toml_struct_fields(&source);
    let known: BTreeSet<&str> = TOML_STRUCTS.iter().map(|(name, _)| *name).collect();
    for name in structs.keys() {
        assert!(
            name == "FileConfig" || known.contains(name.as_str()),
            "{} has a TOML struct `{name}` that tests/config_reference.rs does not know: \
             add it to TOML_STRUCTS with its section name",
            path.display()
        );
    }
    let mut keys = BTreeSet::new();
    for (name, section) in TOML_STRUCTS {
        let fields = structs
            .get(*name)
            .unwrap_or_else(|| panic!("{} has no `pub struct {name} {{`", path.display()));
        assert!(
            !fields.is_empty(),
            "`{name}` in {} has no pub fields",
            path.display()
        );
        for field in fields {
            keys.insert(format!("{section}.{field}"));
        }
    }
    keys
}

/// The TOML keys in the doc's tables: backticked `section.key` cells of table rows.
fn doc_toml_keys(doc: &str) -> BTreeSet<String> {
    let sections: BTreeSet<&str> = TOML_STRUCTS
        .iter()
        .map(|(_, section)| section.split('.').next().unwrap())
        .collect();
    let mut keys = BTreeSet::new();
    for line in doc.lines().filter(|line| line.starts_with('|')) {
        for cell in line.split('|').map(str::trim) {
            let Some(inner) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
                continue;
            };
            let Some((section, _)) = inner.split_once('.') else {
                continue;
            };
            if sections.contains(section)
                && inner
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
            {
                keys.insert(inner.to_owned());
            }
        }
    }
    keys
}

#[test]
fn every_flag_and_env_var_of_the_help_is_documented_in_its_section() {
    let doc = doc();
    let global_help = help(&[]);
    let global_flags = long_flags(&global_help);
    let global_envs = env_vars(&global_help);
    assert!(
        global_flags.contains("--kafka-brokers"),
        "parsed no flags from:\n{global_help}"
    );
    assert!(
        global_envs.contains("AUDITLOG_CONFIG"),
        "parsed no env vars from:\n{global_help}"
    );

    let mut missing = Vec::new();
    let (flag_column, env_column) = table_columns(section(&doc, GLOBAL_HEADING));
    for (name, column) in global_flags
        .iter()
        .map(|flag| (flag, &flag_column))
        .chain(global_envs.iter().map(|env| (env, &env_column)))
    {
        if !BUILTIN_FLAGS.contains(&name.as_str()) && !has_word(column, name) {
            missing.push(format!(
                "{name} (from `auditlog --help`) has no row in the table of section \
                 \"## {GLOBAL_HEADING}\""
            ));
        }
    }
    for (args, heading) in SUBCOMMANDS {
        let text = help(args);
        let (flag_column, env_column) = table_columns(section(&doc, heading));
        let flags = long_flags(&text);
        let envs = env_vars(&text);
        for (name, column) in flags
            .difference(&global_flags)
            .map(|flag| (flag, &flag_column))
            .chain(envs.difference(&global_envs).map(|env| (env, &env_column)))
        {
            if !BUILTIN_FLAGS.contains(&name.as_str()) && !has_word(column, name) {
                missing.push(format!(
                    "{name} (from `auditlog {} --help`) has no row in the table of section \
                     \"## {heading}\"",
                    args.join(" ")
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md is missing:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_flag_and_env_var_in_the_doc_exists() {
    let doc = doc();
    let mut all_help = help(&[]);
    all_help.push_str(&help(&["dlq"]));
    for (args, _) in SUBCOMMANDS {
        all_help.push_str(&help(args));
    }
    let known_flags = long_flags(&all_help);
    let known_envs = env_vars(&all_help);
    let mut stale = Vec::new();
    for flag in long_flags(&doc).difference(&known_flags) {
        stale.push(format!(
            "flag {flag} is in docs/configuration.md but in no `auditlog ... --help`"
        ));
    }
    for name in env_vars(&doc).difference(&known_envs) {
        stale.push(format!(
            "environment variable {name} is in docs/configuration.md but in no `auditlog ... --help`"
        ));
    }
    assert!(
        stale.is_empty(),
        "stale documentation:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn every_toml_key_is_documented_and_every_documented_key_exists() {
    let doc = doc();
    let code = code_toml_keys();
    let documented = doc_toml_keys(&doc);
    let mut problems = Vec::new();
    for key in code.difference(&documented) {
        problems.push(format!(
            "TOML key `{key}` (a field in crates/auditlog/src/config.rs) is in no table of \
             docs/configuration.md"
        ));
    }
    for key in documented.difference(&code) {
        problems.push(format!(
            "TOML key `{key}` is in a table of docs/configuration.md but is no field of the \
             TOML structs in crates/auditlog/src/config.rs"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_example_file_parses_and_uses_only_known_keys() {
    let doc = doc();
    let start = doc
        .find("```toml\n")
        .expect("docs/configuration.md has no ```toml example block")
        + "```toml\n".len();
    let end = start
        + doc[start..]
            .find("```")
            .expect("the ```toml block of docs/configuration.md is not closed");
    let example: toml::Table = toml::from_str(&doc[start..end]).unwrap_or_else(|error| {
        panic!("the example in docs/configuration.md is not TOML: {error}")
    });
    let code = code_toml_keys();
    let sections: BTreeSet<&str> = TOML_STRUCTS.iter().map(|(_, section)| *section).collect();

    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for (section_name, value) in &example {
        let Some(table) = value.as_table() else {
            unknown.push(format!("top-level key `{section_name}` is not a [section]"));
            continue;
        };
        if !sections.contains(section_name.as_str()) {
            unknown.push(format!("section [{section_name}] is unknown"));
            continue;
        }
        check_table(section_name, table, &code, &mut unknown, &mut used);
    }
    assert!(
        unknown.is_empty(),
        "the ```toml example of docs/configuration.md has unknown keys:\n  {}",
        unknown.join("\n  ")
    );
    // A complete example: every key the code knows is shown (commented-out keys excepted).
    let commented: BTreeSet<String> = doc[start..end]
        .lines()
        .filter_map(|line| line.trim().strip_prefix('#'))
        .filter_map(|line| line.split_once('=').map(|(key, _)| key.trim().to_owned()))
        .collect();
    let missing: Vec<&String> = code
        .iter()
        .filter(|key| !used.contains(*key))
        .filter(|key| !commented.contains(key.rsplit('.').next().unwrap()))
        .collect();
    assert!(
        missing.is_empty(),
        "the ```toml example of docs/configuration.md does not show: {missing:?}"
    );
}

fn check_table(
    prefix: &str,
    table: &toml::Table,
    code: &BTreeSet<String>,
    unknown: &mut Vec<String>,
    used: &mut BTreeSet<String>,
) {
    for (key, value) in table {
        let full = format!("{prefix}.{key}");
        if !code.contains(&full) {
            unknown.push(format!(
                "`{full}` is no TOML key of crates/auditlog/src/config.rs"
            ));
            continue;
        }
        used.insert(full.clone());
        if OPEN_TABLES.contains(&full.as_str()) {
            continue;
        }
        if TABLE_ARRAYS.contains(&full.as_str()) {
            for entry in value.as_array().into_iter().flatten() {
                match entry.as_table() {
                    Some(inner) => check_table(&full, inner, code, unknown, used),
                    None => unknown.push(format!("`{full}` entries must be tables")),
                }
            }
        }
    }
}
