//! `auditlog query`: Coder's filter language on the command line.
//!
//! - `--parse`: the parsed filter as one JSON object (no ClickHouse needed);
//! - `--sql`: the page query's SQL text, then its parameters, one per line;
//! - `--count`: the exact, deduplicated number of matching events (no cap);
//! - otherwise: one page of events, newest first, as a table, JSON, NDJSON or CSV.
//!
//! Exit codes: 0 ok; 2 invalid filter, with Coder's 400 body on stdout; 1 anything else.
//! The CLI holds the ClickHouse credentials, so it sees every row (no token roles here).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use auditlog_query::{
    AuditFilter, AuditLog, AuditLogsResponse, Cursor, DEFAULT_LIMIT, InvalidQuery, Page,
    QueryRunner, Visibility, write_csv_header, write_csv_rows, write_ndjson,
};

use crate::cli::{OutputFormat, QueryArgs};
use crate::config::{FileConfig, Settings};

/// Exit code for an invalid filter.
const EXIT_INVALID_FILTER: u8 = 2;

/// The CLI's limit on one query: an operator waiting at a terminal, or a script, may run an
/// exact count over the whole table, which is longer work than an API page.
const CLI_QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest cell of the table format, in characters.
const TABLE_CELL_MAX_CHARS: usize = 48;

pub async fn run(settings: &Settings, args: &QueryArgs, _file: &FileConfig) -> Result<ExitCode> {
    if args.parse {
        return match AuditFilter::parse(&args.filter) {
            Ok(filter) => {
                println!("{}", serde_json::to_string(&filter)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(auditlog_query::Error::InvalidQuery(invalid)) => invalid_filter(&invalid),
            Err(other) => Err(other.into()),
        };
    }
    let runner =
        QueryRunner::for_config(&settings.clickhouse())?.with_query_timeout(CLI_QUERY_TIMEOUT);
    let visibility = Visibility::All;
    let filter = match runner
        .resolve(&args.filter, args.as_user.as_deref(), &visibility)
        .await
    {
        Ok(filter) => filter,
        Err(auditlog_query::Error::InvalidQuery(invalid)) => return invalid_filter(&invalid),
        Err(other) => return Err(other.into()),
    };

    if args.count {
        let count = runner.count_exact(&visibility, &filter).await?;
        println!("{count}");
        return Ok(ExitCode::SUCCESS);
    }

    let limit = match u64::from(args.limit) {
        0 => DEFAULT_LIMIT,
        limit => limit,
    };
    let page = match &args.after {
        Some(text) => {
            if args.offset > 0 {
                bail!(
                    "--after and --offset cannot be combined: a cursor already says where the page starts"
                );
            }
            let cursor = Cursor::decode(text).context("--after")?;
            Page::After { limit, cursor }
        }
        None => Page::Offset {
            limit,
            offset: u64::from(args.offset),
        },
    };

    if args.sql {
        let query = runner.sql_builder(&visibility).page(&filter, &page);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", query.text)?;
        writeln!(out)?;
        for (name, value) in &query.params {
            writeln!(
                out,
                "{name}\t{}\t{}",
                value.clickhouse_type(),
                serde_json::to_string(value)?
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let format = args.format.unwrap_or_else(|| {
        if std::io::stdout().is_terminal() {
            OutputFormat::Table
        } else {
            OutputFormat::Ndjson
        }
    });
    let (rows, capped_count) = if format == OutputFormat::Json {
        let (rows, count) = runner.page_and_count(&visibility, &filter, &page).await?;
        (rows, Some(count))
    } else {
        (runner.page(&visibility, &filter, &page).await?, None)
    };
    let next_cursor = rows
        .last()
        .filter(|_| rows.len() as u64 == limit)
        .map(|row| Cursor::from(row).encode());
    let logs: Vec<AuditLog> = rows
        .into_iter()
        .map(|row| AuditLog::from_event(&row.into_event()))
        .collect();

    let mut bytes = Vec::new();
    match format {
        OutputFormat::Table => write_table(&logs, &mut bytes),
        OutputFormat::Json => {
            let response = AuditLogsResponse::new(logs, capped_count.unwrap_or_default());
            serde_json::to_writer_pretty(&mut bytes, &response)?;
            bytes.push(b'\n');
        }
        OutputFormat::Ndjson => write_ndjson(&logs, &mut bytes),
        OutputFormat::Csv => {
            write_csv_header(&mut bytes);
            write_csv_rows(&logs, &mut bytes);
        }
    }
    std::io::stdout().lock().write_all(&bytes)?;
    if let Some(cursor) = next_cursor {
        eprintln!("next page: --after {cursor}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Coder's 400 body on stdout, exit 2.
fn invalid_filter(invalid: &InvalidQuery) -> Result<ExitCode> {
    println!("{}", serde_json::to_string(invalid)?);
    Ok(ExitCode::from(EXIT_INVALID_FILTER))
}

fn write_table(logs: &[AuditLog], out: &mut Vec<u8>) {
    const HEADER: [&str; 8] = [
        "TIME",
        "USER",
        "ACTION",
        "RESOURCE",
        "TARGET",
        "STATUS",
        "ORGANIZATION",
        "DESCRIPTION",
    ];
    let rows: Vec<[String; 8]> = logs
        .iter()
        .map(|log| {
            let time = log
                .time
                .format(&time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .unwrap_or_default();
            [
                time,
                log.user
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |user| user.username.clone()),
                log.action.clone(),
                log.resource_type.clone(),
                log.resource_target.clone(),
                log.status_code.to_string(),
                log.organization
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |organization| organization.name.clone()),
                log.readable_description(),
            ]
            .map(|cell| truncate(&cell))
        })
        .collect();
    let mut widths = HEADER.map(|title| title.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        out.extend_from_slice(text.trim_end().as_bytes());
        out.push(b'\n');
    };
    line(&HEADER.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    if logs.is_empty() {
        out.extend_from_slice(b"(no matching events)\n");
    }
}

fn truncate(cell: &str) -> String {
    // Control characters would break the columns (and could drive the terminal).
    let clean: String = cell
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect();
    if clean.chars().count() <= TABLE_CELL_MAX_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(TABLE_CELL_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_cut_long_cells() {
        let mut log = AuditLog::from_event(&auditlog_event::testing::sample_event());
        log.resource_target = format!("{}\x1b[31m", "x".repeat(100));
        let mut out = Vec::new();
        write_table(&[log], &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("TIME "));
        assert!(lines[1].starts_with("2025-06-01 12:34:56  alice"));
        assert!(!text.contains('\x1b'));
        assert!(text.contains('…'));
        assert!(lines[1].contains("alice started workspace xxx"));
    }
}
