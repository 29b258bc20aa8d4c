//! Runs the generated SQL against ClickHouse: pages, counts, the organization directory.
//!
//! ```text
//!  ResolvedFilter + Visibility ──SqlBuilder──► SqlQuery ──client.query(text).param(..)──►
//!      ClickHouse (max_execution_time per query)   ◄── tokio timeout on the client side
//!          │ RowBinary
//!          ▼
//!  AuditLogRow ──into_event──► AuditEvent ──AuditLog::from_event──► Coder's JSON
//! ```
//!
//! Every query carries `max_execution_time`, so ClickHouse itself stops work nobody waits
//! for, and the client gives up a little later in case the server cannot (a stuck network,
//! an overloaded server). Both surface as [`Error::Timeout`], which the API turns into a 503.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_store::{AuditLogRow, ServerFailure, decode_rows};
use serde::Deserialize;
use uuid::Uuid;

use crate::census::CensusCache;
use crate::engine_time;
use crate::error::Error;
use crate::filter::{OrganizationRef, parse_collecting};
use crate::histogram::{Bucket, Histogram, MICROS_PER_SECOND, Span, bucket_width_seconds};
use crate::keyed_page::{EventKey, KeyedPage};
use crate::resolve::{OrganizationLookup, ResolvedFilter, Resolver};
use crate::sql::{Page, SqlBuilder, SqlQuery};
use crate::suggest::{MAX_SUGGESTIONS, SUGGEST_WINDOWS, SuggestSource, filter_keys, matching};
use crate::window::{count_windows, page_windows};

/// The default limit on one query's run time.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the organization directory is reused before it is read again.
pub const DEFAULT_ORGANIZATION_CACHE_TTL: Duration = Duration::from_secs(30);

/// A name missing from a directory at least this old triggers one re-read, so an
/// organization that appears in the data is found within seconds, not a whole TTL.
const ORGANIZATION_MISS_REFRESH_AGE: Duration = Duration::from_secs(2);

/// Extra time the client waits beyond `max_execution_time`, so the server's own, clearer
/// timeout error usually arrives first.
const CLIENT_TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// Which rows a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every row (an `auditor`, or the CLI).
    All,
    /// Only rows of these organizations (an `org_auditor`); enforced in the SQL.
    Organizations(Vec<Uuid>),
}

impl Visibility {
    /// Whether rows of `organization_id` are visible.
    pub fn allows(&self, organization_id: Uuid) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Organizations(ids) => ids.contains(&organization_id),
        }
    }
}

/// The organizations seen in the data, for `organization:<name>`.
///
/// A name maps to the organization that carried it most recently, so a renamed
/// organization is found by its current name and, while no other organization took it, by
/// its old one. Names compare case-insensitively (ASCII), like the filter's lowercased value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganizationDirectory {
    by_lowercase_name: HashMap<String, Uuid>,
}

impl OrganizationDirectory {
    /// A directory from `(id, name, last seen µs)` rows, the most recent holder winning.
    pub fn from_sightings(sightings: impl IntoIterator<Item = (Uuid, String, i64)>) -> Self {
        let mut latest: HashMap<String, (i64, Uuid)> = HashMap::new();
        for (id, name, last_seen) in sightings {
            let key = name.to_ascii_lowercase();
            let candidate = (last_seen, id);
            latest
                .entry(key)
                .and_modify(|current| {
                    if candidate > *current {
                        *current = candidate;
                    }
                })
                .or_insert(candidate);
        }
        Self {
            by_lowercase_name: latest
                .into_iter()
                .map(|(name, (_, id))| (name, id))
                .collect(),
        }
    }

    /// The organization called `name` (any case).
    pub fn find(&self, name: &str) -> Option<Uuid> {
        self.by_lowercase_name
            .get(&name.to_ascii_lowercase())
            .copied()
    }

    /// The (lowercase) names of the organizations `visibility` allows.
    pub fn names_visible_to(&self, visibility: &Visibility) -> Vec<String> {
        self.by_lowercase_name
            .iter()
            .filter(|(_, id)| visibility.allows(**id))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// How many names are known.
    pub fn len(&self) -> usize {
        self.by_lowercase_name.len()
    }

    /// Whether no organization is known.
    pub fn is_empty(&self) -> bool {
        self.by_lowercase_name.is_empty()
    }

    /// This directory as seen by a caller: organizations outside `visibility` do not exist
    /// (Coder gives the same error for "does not exist" and "may not see").
    pub fn visible_to<'a>(&'a self, visibility: &'a Visibility) -> ScopedDirectory<'a> {
        ScopedDirectory {
            directory: self,
            visibility,
        }
    }
}

impl OrganizationLookup for OrganizationDirectory {
    fn organization_id(&self, name: &str) -> Option<Uuid> {
        self.find(name)
    }
}

/// An [`OrganizationDirectory`] restricted to what one caller may see.
#[derive(Debug, Clone, Copy)]
pub struct ScopedDirectory<'a> {
    directory: &'a OrganizationDirectory,
    visibility: &'a Visibility,
}

impl OrganizationLookup for ScopedDirectory<'_> {
    fn organization_id(&self, name: &str) -> Option<Uuid> {
        self.directory
            .find(name)
            .filter(|id| self.visibility.allows(*id))
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct OrganizationSighting {
    #[serde(with = "clickhouse::serde::uuid")]
    organization_id: Uuid,
    organization_name: String,
    last_seen_micros: i64,
}

#[derive(Debug)]
struct CachedDirectory {
    fetched_at: Instant,
    directory: Arc<OrganizationDirectory>,
}

/// Executes page and count queries for one table.
///
/// Cheap to share behind an `Arc`; the `clickhouse::Client` inside pools connections.
pub struct QueryRunner {
    client: clickhouse::Client,
    builder: SqlBuilder,
    database: String,
    table: String,
    query_timeout: Duration,
    organization_cache_ttl: Duration,
    organizations: Mutex<Option<CachedDirectory>>,
    census: Mutex<CensusCache>,
}

impl std::fmt::Debug for QueryRunner {
    // The client is left out: its Debug is the crate's business, and nothing here needs it.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("QueryRunner")
            .field("database", &self.database)
            .field("table", &self.table)
            .field("query_timeout", &self.query_timeout)
            .finish_non_exhaustive()
    }
}

impl QueryRunner {
    /// A runner for `database.table` (validated identifiers) through `client`.
    pub fn try_new(client: clickhouse::Client, database: &str, table: &str) -> Result<Self, Error> {
        Ok(Self {
            client,
            builder: SqlBuilder::try_new(database, table)?,
            database: database.to_owned(),
            table: table.to_owned(),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            organization_cache_ttl: DEFAULT_ORGANIZATION_CACHE_TTL,
            organizations: Mutex::new(None),
            census: Mutex::new(CensusCache::new()),
        })
    }

    /// A runner for the table `config` names, through the client it configures.
    pub fn for_config(config: &auditlog_store::ClickHouseConfig) -> Result<Self, Error> {
        Ok(
            Self::try_new(config.client(), &config.database, &config.table)?
                .with_distributed(config.cluster),
        )
    }

    /// The tables are the cluster schema's Distributed ones ([`SqlBuilder::with_distributed`]).
    pub fn with_distributed(mut self, distributed: bool) -> Self {
        self.builder = self.builder.with_distributed(distributed);
        self
    }

    /// Limits each query's run time (server-side `max_execution_time`, plus a client timeout).
    pub fn with_query_timeout(mut self, query_timeout: Duration) -> Self {
        self.query_timeout = query_timeout;
        self
    }

    /// How long the organization directory is reused.
    pub fn with_organization_cache_ttl(mut self, ttl: Duration) -> Self {
        self.organization_cache_ttl = ttl;
        self
    }

    /// The limit on one query's run time.
    pub fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    /// The SQL builder for a caller: the table's builder with the caller's organization scope.
    pub fn sql_builder(&self, visibility: &Visibility) -> SqlBuilder {
        match visibility {
            Visibility::All => self.builder.clone(),
            Visibility::Organizations(ids) => self
                .builder
                .clone()
                .with_organization_scope(ids.iter().copied()),
        }
    }

    /// Parses and resolves `q` for a caller: `username:me` is `caller_username`, and an
    /// organization name is looked up among the organizations the caller may see.
    ///
    /// The directory is read (or taken from the cache) only when the query names an
    /// organization by name, so most queries cost no lookup. All problems come back together, in
    /// Coder's order, as [`Error::InvalidQuery`].
    pub async fn resolve(
        &self,
        query: &str,
        caller_username: Option<&str>,
        visibility: &Visibility,
    ) -> Result<ResolvedFilter, Error> {
        // One parse serves both the lookup and the resolution. The filter keeps every valid
        // key even when others are invalid, so an unknown organization name is still reported
        // alongside the other errors, in Coder's place for it.
        let (filter, validations) = parse_collecting(query)?;
        let directory = match &filter.organization {
            Some(OrganizationRef::Name(name)) => Some(self.organizations_knowing(name).await?),
            Some(OrganizationRef::Id(_)) | None => None,
        };
        let scoped = directory
            .as_deref()
            .map(|directory| directory.visible_to(visibility));
        let mut resolver = Resolver::new();
        if let Some(scoped) = &scoped {
            resolver = resolver.with_organizations(scoped);
        }
        if let Some(username) = caller_username {
            resolver = resolver.with_caller_username(username);
        }
        resolver.resolve_parsed(&filter, validations)
    }

    /// One page of matching rows, newest first.
    ///
    /// Read through widening time windows ([`crate::window`]): the first window that fills
    /// the page answers it, and a page still short after the widest is read unbounded.
    pub async fn page(
        &self,
        visibility: &Visibility,
        filter: &ResolvedFilter,
        page: &Page,
    ) -> Result<Vec<AuditLogRow>, Error> {
        let builder = self.sql_builder(visibility);
        let wanted = match page {
            Page::Offset { limit, .. } | Page::After { limit, .. } => *limit,
        };
        if wanted > 0 {
            for window in page_windows(filter) {
                let rows = self
                    .fetch_rows(&builder.page_within(filter, page, Some(*window)))
                    .await?;
                if rows.len() as u64 >= wanted {
                    return Ok(rows);
                }
            }
        }
        self.fetch_rows(&builder.page(filter, page)).await
    }

    /// A page and Coder's capped count of the same filter, as [`Self::page`] and
    /// [`Self::count_capped`] answer them. Where one read of the filter's keys answers both
    /// ([`crate::keyed_page`]) it is read once; otherwise the two run concurrently.
    pub async fn page_and_count(
        &self,
        visibility: &Visibility,
        filter: &ResolvedFilter,
        page: &Page,
    ) -> Result<(Vec<AuditLogRow>, u64), Error> {
        let windowless = page_windows(filter).is_empty() && count_windows(filter).is_empty();
        let Some(keyed) = KeyedPage::plan(filter, page).filter(|_| windowless) else {
            return tokio::try_join!(
                self.page(visibility, filter, page),
                self.count_capped(visibility, filter)
            );
        };
        let builder = self.sql_builder(visibility);
        let keys = self
            .fetch_all::<EventKey>(&builder.newest_keys(filter, crate::COUNT_CAP + 1))
            .await?;
        let page_keys = keyed.select(&keys);
        let rows = if page_keys.is_empty() {
            Vec::new()
        } else {
            self.fetch_rows(&builder.rows_by_keys(page_keys)).await?
        };
        Ok((rows, keys.len() as u64))
    }

    /// Up to `limit` matching rows of `[from_micros, to_micros)` after `after`, oldest first
    /// ([`SqlBuilder::range_page`]): page through a whole range by passing the last row's
    /// [`crate::Cursor`] until a page comes back short.
    pub async fn range_page(
        &self,
        filter: &ResolvedFilter,
        (from_micros, to_micros): (i64, i64),
        after: Option<crate::Cursor>,
        limit: u64,
    ) -> Result<Vec<AuditLogRow>, Error> {
        let query = self
            .builder
            .range_page(filter, from_micros, to_micros, after, limit);
        self.fetch_rows(&query).await
    }

    /// Coder's capped count: at most [`crate::COUNT_CAP`] + 1, through the same windows as
    /// pages (a window that reaches the cap answers it).
    pub async fn count_capped(
        &self,
        visibility: &Visibility,
        filter: &ResolvedFilter,
    ) -> Result<u64, Error> {
        let builder = self.sql_builder(visibility);
        for window in count_windows(filter) {
            let count = self
                .fetch_count(&builder.count_capped_within(filter, Some(*window)))
                .await?;
            if count > crate::COUNT_CAP {
                return Ok(count);
            }
        }
        self.fetch_count(&builder.count_capped(filter)).await
    }

    /// The exact number of matching events, duplicates counted once.
    pub async fn count_exact(
        &self,
        visibility: &Visibility,
        filter: &ResolvedFilter,
    ) -> Result<u64, Error> {
        let query = self.sql_builder(visibility).count_exact(filter);
        self.fetch_count(&query).await
    }

    /// The matching events over time, in automatic buckets; they add up to the exact count.
    ///
    /// The width comes from the span of the caller's rows in the filter's dates
    /// ([`crate::bucket_width_seconds`]); when the matches turn out to occupy a much
    /// shorter span, they are counted again at the finer width, reading only that span.
    pub async fn histogram(
        &self,
        visibility: &Visibility,
        filter: &ResolvedFilter,
    ) -> Result<Histogram, Error> {
        let builder = self.sql_builder(visibility);
        let spans = self
            .fetch_all::<Span>(&builder.histogram_span(filter))
            .await?;
        let span = spans.first().copied().unwrap_or(Span {
            first_micros: 0,
            last_micros: 0,
        });
        let mut bucket_seconds = bucket_width_seconds(span.first_micros, span.last_micros);
        let seconds = (
            span.first_micros.div_euclid(MICROS_PER_SECOND),
            span.last_micros.div_euclid(MICROS_PER_SECOND),
        );
        let mut buckets = self
            .buckets(&builder, filter, bucket_seconds, seconds, None)
            .await?;
        if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
            let occupied = (first.start, last.start + bucket_seconds as i64);
            let finer = bucket_width_seconds(
                occupied.0.saturating_mul(MICROS_PER_SECOND),
                (occupied.1 - 1).saturating_mul(MICROS_PER_SECOND),
            );
            if finer < bucket_seconds {
                bucket_seconds = finer;
                buckets = self
                    .buckets(
                        &builder,
                        filter,
                        finer,
                        (occupied.0, occupied.1 - 1),
                        Some(occupied),
                    )
                    .await?;
            }
        }
        let total = buckets.iter().map(|bucket| bucket.count).sum();
        Ok(Histogram {
            bucket_seconds,
            buckets,
            total,
        })
    }

    /// The chart's buckets at `width` over the days of `span` (`[first, last]` seconds):
    /// from the hourly rollup where it can count `filter`, else from the table, reading only
    /// `within` (`[from, to)` seconds) when given.
    async fn buckets(
        &self,
        builder: &SqlBuilder,
        filter: &ResolvedFilter,
        width: u64,
        span: (i64, i64),
        within: Option<(i64, i64)>,
    ) -> Result<Vec<Bucket>, Error> {
        match self.hourly_histogram(builder, filter, width, span).await? {
            Some(buckets) => Ok(buckets),
            None => {
                self.fetch_all::<Bucket>(&builder.histogram_buckets(filter, width, within))
                    .await
            }
        }
    }

    /// Takes the chart's day census of the whole table (see [`crate::chart`]), so that the
    /// first chart a server draws is as fast as the next: a server calls it once at start.
    pub async fn warm_chart(&self) -> Result<(), Error> {
        self.histogram(&Visibility::All, &ResolvedFilter::default())
            .await
            .map(|_| ())
    }

    /// Values for completing `key:` in a filter, starting with `prefix`, that the caller may
    /// see; `None` when the key has nothing to suggest.
    pub async fn suggest(
        &self,
        visibility: &Visibility,
        key: &str,
        prefix: &str,
    ) -> Result<Option<Vec<String>>, Error> {
        let Some(source) = SuggestSource::for_key(key) else {
            return Ok(None);
        };
        let values = match source {
            SuggestSource::Keys => matching(filter_keys().iter().copied(), prefix),
            SuggestSource::Enum(kind) => matching(kind.values(), prefix),
            SuggestSource::Organizations => {
                let directory = self.organizations().await?;
                let mut names = directory.names_visible_to(visibility);
                names.sort_unstable();
                matching(names.iter().map(String::as_str), prefix)
            }
            SuggestSource::Column(column) => {
                let builder = self.sql_builder(visibility);
                let mut found = None;
                for window in SUGGEST_WINDOWS {
                    let query = builder.suggest_within(column, prefix, Some(window));
                    let values = self.fetch_all::<String>(&query).await?;
                    if values.len() as u64 >= MAX_SUGGESTIONS {
                        found = Some(values);
                        break;
                    }
                }
                match found {
                    Some(values) => values,
                    None => {
                        self.fetch_all::<String>(&builder.suggest(column, prefix))
                            .await?
                    }
                }
            }
        };
        Ok(Some(values))
    }

    /// Whether ClickHouse answers at all (for `/readyz`).
    pub async fn ping(&self) -> Result<(), Error> {
        let query = SqlQuery {
            text: "SELECT toUInt64(1)".to_owned(),
            params: Vec::new(),
        };
        self.fetch_count(&query).await.map(|_| ())
    }

    /// The organizations seen in the data, cached for the configured TTL.
    pub async fn organizations(&self) -> Result<Arc<OrganizationDirectory>, Error> {
        if let Some(directory) = self.cached_organizations(self.organization_cache_ttl) {
            return Ok(directory);
        }
        self.refresh_organizations().await
    }

    /// Like [`Self::organizations`], but re-reads a directory older than a couple of seconds
    /// when it lacks `name`, so a new organization is found promptly.
    pub async fn organizations_knowing(
        &self,
        name: &str,
    ) -> Result<Arc<OrganizationDirectory>, Error> {
        let directory = self.organizations().await?;
        if directory.find(name).is_some()
            || self
                .cached_organizations(ORGANIZATION_MISS_REFRESH_AGE)
                .is_some()
        {
            return Ok(directory);
        }
        self.refresh_organizations().await
    }

    fn cached_organizations(&self, max_age: Duration) -> Option<Arc<OrganizationDirectory>> {
        let cache = self
            .organizations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .as_ref()
            .filter(|cached| cached.fetched_at.elapsed() < max_age)
            .map(|cached| Arc::clone(&cached.directory))
    }

    async fn refresh_organizations(&self) -> Result<Arc<OrganizationDirectory>, Error> {
        let query = SqlQuery {
            text: format!(
                "SELECT organization_id, organization_name, toInt64(toUnixTimestamp64Micro(max(time))) AS last_seen_micros\n\
                 FROM `{}`.`{}`\n\
                 WHERE organization_id != toUUID('00000000-0000-0000-0000-000000000000')\n\
                 GROUP BY organization_id, organization_name",
                self.database, self.table
            ),
            params: Vec::new(),
        };
        let sightings = self.fetch_all::<OrganizationSighting>(&query).await?;
        let directory = Arc::new(OrganizationDirectory::from_sightings(
            sightings.into_iter().map(|sighting| {
                (
                    sighting.organization_id,
                    sighting.organization_name,
                    sighting.last_seen_micros,
                )
            }),
        ));
        let mut cache = self
            .organizations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *cache = Some(CachedDirectory {
            fetched_at: Instant::now(),
            directory: Arc::clone(&directory),
        });
        Ok(directory)
    }

    fn request(&self, query: &SqlQuery) -> clickhouse::query::Query {
        // Whole seconds, at least one: every ClickHouse version parses that.
        let max_execution_secs = self.query_timeout.as_secs_f64().ceil().max(1.0) as u64;
        let mut request = self
            .client
            .query(&query.text)
            .with_setting("max_execution_time", max_execution_secs.to_string());
        for (name, value) in &query.params {
            request = request.param(name, value);
        }
        request
    }

    /// Runs `query` with the query's time limit on both sides of the wire.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, Error> {
        let limit = self.query_timeout;
        match tokio::time::timeout(limit + CLIENT_TIMEOUT_GRACE, work).await {
            Err(_elapsed) => Err(Error::Timeout { limit }),
            Ok(result) => result.map_err(|error| classify(error, limit)),
        }
    }

    /// The chart's day census cache (see [`crate::chart`]); a poisoned lock only means a
    /// panic elsewhere mid-update, and a census is re-taken whenever it disagrees.
    pub(crate) fn census_cache(&self) -> std::sync::MutexGuard<'_, CensusCache> {
        self.census
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) async fn fetch_all<T>(&self, query: &SqlQuery) -> Result<Vec<T>, Error>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.bounded(async {
            let mut cursor = self.request(query).fetch::<T>()?;
            let mut rows = Vec::new();
            while let Some(row) = cursor.next().await? {
                rows.push(row);
            }
            engine_time::record(cursor.summary());
            Ok(rows)
        })
        .await
    }

    /// The rows of a page query, one per event: its copies arrive next to each other (the
    /// query orders by the sorting key), and all but the first are dropped.
    async fn fetch_rows(&self, query: &SqlQuery) -> Result<Vec<AuditLogRow>, Error> {
        let bytes = self
            .bounded(async {
                let mut cursor = self.request(query).fetch_bytes("RowBinary")?;
                let bytes = cursor.collect().await;
                engine_time::record(cursor.summary());
                bytes
            })
            .await?;
        let mut rows = decode_rows(&bytes)?;
        rows.dedup_by_key(|row| row.key());
        Ok(rows)
    }

    async fn fetch_count(&self, query: &SqlQuery) -> Result<u64, Error> {
        let rows = self.fetch_all::<u64>(query).await?;
        rows.first().copied().ok_or_else(|| Error::ClickHouse {
            message: "a count query returned no row".to_owned(),
        })
    }
}

/// Maps a client error to ours: the server's TIMEOUT_EXCEEDED becomes a timeout.
fn classify(error: clickhouse::error::Error, limit: Duration) -> Error {
    let timed_out = matches!(error, clickhouse::error::Error::TimedOut)
        || ServerFailure::of(&error) == ServerFailure::Timeout;
    if timed_out {
        Error::Timeout { limit }
    } else {
        Error::ClickHouse {
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_recent_holder_of_a_name_wins() {
        let old = Uuid::from_u128(1);
        let new = Uuid::from_u128(2);
        let directory = OrganizationDirectory::from_sightings([
            (old, "Acme".to_owned(), 10),
            (new, "acme".to_owned(), 20),
            (old, "acme-legacy".to_owned(), 5),
        ]);
        assert_eq!(directory.find("ACME"), Some(new));
        assert_eq!(directory.find("acme-legacy"), Some(old));
        assert_eq!(directory.find("nope"), None);
        assert_eq!(directory.len(), 2);
    }

    #[test]
    fn scoped_directories_hide_other_organizations() {
        let visible = Uuid::from_u128(1);
        let hidden = Uuid::from_u128(2);
        let directory = OrganizationDirectory::from_sightings([
            (visible, "mine".to_owned(), 1),
            (hidden, "theirs".to_owned(), 1),
        ]);
        let visibility = Visibility::Organizations(vec![visible]);
        let scoped = directory.visible_to(&visibility);
        assert_eq!(scoped.organization_id("mine"), Some(visible));
        assert_eq!(scoped.organization_id("theirs"), None);
    }

    #[test]
    fn server_timeouts_are_recognised() {
        let error = clickhouse::error::Error::BadResponse(
            "Code: 159. DB::Exception: Timeout exceeded: elapsed 1.0 seconds, maximum: 1. (TIMEOUT_EXCEEDED) (version 26.9.2.1)".to_owned(),
        );
        assert_eq!(
            classify(error, Duration::from_secs(1)),
            Error::Timeout {
                limit: Duration::from_secs(1)
            }
        );
        let other = clickhouse::error::Error::BadResponse("Code: 60. DB::Exception: x".to_owned());
        assert!(matches!(
            classify(other, Duration::from_secs(1)),
            Error::ClickHouse { .. }
        ));
    }
}
