//! The generator itself: a seeded iterator that numbers, times and ids each drafted event.

use std::fmt;
use std::sync::Arc;

use auditlog_event::{Actor, AuditEvent, Organization};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::Drafter;
use crate::rng::{Rng, splitmix64};
use crate::world::World;

/// Events in the default time span.
pub const DEFAULT_EVENT_COUNT: u64 = 1_000_000;

/// Length of the default time span, which ends when the generator is created.
pub const DEFAULT_SPAN: time::Duration = time::Duration::days(30);

/// Base of the timestamp field of generated event ids: 2025-01-01T00:00:00Z in
/// milliseconds. Event `n` gets `base + n`, so ids sort like the events and never collide
/// within one generator.
const ID_EPOCH_MS: u64 = 1_735_689_600_000;

/// One deterministic generator of Coder-like audit events.
///
/// ```
/// use auditlog_traffic::TrafficGenerator;
/// use time::macros::datetime;
///
/// let events: Vec<_> = TrafficGenerator::new(7)
///     .with_time_span(datetime!(2025-01-01 0:00 UTC), datetime!(2025-01-02 0:00 UTC), 1_000)
///     .collect();
/// assert_eq!(events.len(), 1_000);
/// assert!(events.iter().all(|event| event.validate().is_ok()));
/// assert!(events.windows(2).all(|pair| pair[0].time <= pair[1].time));
///
/// let again: Vec<_> = TrafficGenerator::new(7)
///     .with_time_span(datetime!(2025-01-01 0:00 UTC), datetime!(2025-01-02 0:00 UTC), 1_000)
///     .collect();
/// assert_eq!(events, again);
/// ```
#[derive(Clone)]
pub struct TrafficGenerator {
    world: Arc<World>,
    rng: Rng,
    /// Seed-derived key that makes the random bits of event ids differ between seeds.
    id_key: u64,
    start_nanos: i128,
    span_nanos: u128,
    count: u64,
    /// Index of the next event; `count` when the iterator is done.
    sequence: u64,
    /// The next build number of each workspace, indexed like `World::workspaces`.
    build_numbers: Vec<u32>,
}

impl fmt::Debug for TrafficGenerator {
    // The world holds thousands of users; a summary is what a log line needs.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TrafficGenerator")
            .field("seed", &self.world.seed)
            .field("organizations", &self.world.organizations.len())
            .field("users", &self.world.users.len())
            .field("workspaces", &self.world.workspaces.len())
            .field("count", &self.count)
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl TrafficGenerator {
    /// A generator of [`DEFAULT_EVENT_COUNT`] events over the 30 days before now.
    pub fn new(seed: u64) -> Self {
        let world = World::build(seed);
        let build_numbers = world
            .workspaces
            .iter()
            .map(|workspace| workspace.first_build_number)
            .collect();
        let end = OffsetDateTime::now_utc();
        let mut generator = TrafficGenerator {
            world: Arc::new(world),
            rng: Rng::new(splitmix64(seed ^ 0x6576_656e_7473)),
            id_key: splitmix64(seed ^ 0x0069_646b_6579),
            start_nanos: 0,
            span_nanos: 0,
            count: 0,
            sequence: 0,
            build_numbers,
        };
        generator.set_span(end - DEFAULT_SPAN, end, DEFAULT_EVENT_COUNT);
        generator
    }

    /// Spreads `count` events over `[start, end)` in increasing time order (with jitter).
    ///
    /// The iterator then yields exactly `count` events. Events are valid only if the span
    /// lies in the range [`AuditEvent::validate`] accepts (1900 to 2299); an empty or
    /// reversed span puts every event at `start`.
    pub fn with_time_span(
        mut self,
        start: OffsetDateTime,
        end: OffsetDateTime,
        count: u64,
    ) -> Self {
        self.set_span(start, end, count);
        self
    }

    fn set_span(&mut self, start: OffsetDateTime, end: OffsetDateTime, count: u64) {
        self.start_nanos = start.unix_timestamp_nanos();
        self.span_nanos =
            u128::try_from(end.unix_timestamp_nanos() - self.start_nanos).unwrap_or(0);
        self.count = count;
    }

    /// The organizations events belong to (site-wide events have none).
    pub fn organizations(&self) -> &[Organization] {
        &self.world.organizations
    }

    /// Every user that acts in the generated events.
    pub fn users(&self) -> &[Actor] {
        &self.world.users
    }

    /// The seed this generator was made with.
    pub fn seed(&self) -> u64 {
        self.world.seed
    }

    /// Events this generator yields in total (its `count`).
    pub fn event_count(&self) -> u64 {
        self.count
    }

    /// The time of event `sequence`: its slot of the span plus a random offset within it,
    /// so times strictly follow the sequence order up to microsecond truncation.
    fn event_time(&mut self, sequence: u64) -> OffsetDateTime {
        const JITTER_BITS: u32 = 32;
        let jitter = u128::from(self.rng.next_u64() >> (64 - JITTER_BITS));
        let position = (u128::from(sequence) << JITTER_BITS) | jitter;
        let slots = u128::from(self.count.max(1)) << JITTER_BITS;
        let offset = self.span_nanos.saturating_mul(position) / slots;
        let nanos = self.start_nanos + i128::try_from(offset).unwrap_or(0);
        let micros_nanos = nanos - nanos.rem_euclid(1_000);
        OffsetDateTime::from_unix_timestamp_nanos(micros_nanos)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// A UUID v7 made of the seed and the sequence only.
    fn event_id(&self, sequence: u64) -> Uuid {
        let millis = ID_EPOCH_MS.wrapping_add(sequence) & ((1 << 48) - 1);
        let random = splitmix64(self.id_key.wrapping_add(sequence));
        let random_a = (random >> 52) as u16 & 0x0fff;
        let random_b = splitmix64(random) & ((1 << 62) - 1);
        let value = (u128::from(millis) << 80)
            | (0x7 << 76)
            | (u128::from(random_a) << 64)
            | (0b10 << 62)
            | u128::from(random_b);
        Uuid::from_u128(value)
    }

    fn generate(&mut self, sequence: u64) -> AuditEvent {
        let time = self.event_time(sequence);
        let id = self.event_id(sequence);
        let request_id = self.rng.uuid_v4();
        let draft = Drafter {
            world: &self.world,
            rng: &mut self.rng,
            build_numbers: &mut self.build_numbers,
        }
        .draft();
        draft.into_event(id, time, request_id, &self.world)
    }
}

impl Iterator for TrafficGenerator {
    type Item = AuditEvent;

    fn next(&mut self) -> Option<AuditEvent> {
        if self.sequence >= self.count {
            return None;
        }
        let sequence = self.sequence;
        self.sequence += 1;
        Some(self.generate(sequence))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.count - self.sequence).unwrap_or(usize::MAX);
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for TrafficGenerator {}

impl std::iter::FusedIterator for TrafficGenerator {}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use std::net::IpAddr;

    use auditlog_event::{Action, BuildReason, ResourceType};
    use serde_json::Value;
    use time::macros::datetime;

    use super::*;
    use crate::world::NUM_USERS;

    /// `count` events of `seed` over March 2025.
    fn sample_with_seed(seed: u64, count: u64) -> Vec<AuditEvent> {
        TrafficGenerator::new(seed)
            .with_time_span(
                datetime!(2025-03-01 0:00 UTC),
                datetime!(2025-04-01 0:00 UTC),
                count,
            )
            .collect()
    }

    fn sample(count: u64) -> Vec<AuditEvent> {
        sample_with_seed(42, count)
    }

    #[test]
    fn every_event_of_100k_is_valid_with_a_unique_v7_id() {
        let events = sample(100_000);
        assert_eq!(events.len(), 100_000);
        let mut ids = HashSet::with_capacity(events.len());
        for event in &events {
            if let Err(error) = event.validate() {
                panic!("invalid generated event {}: {error}: {event:?}", event.id);
            }
            assert_eq!(event.id.get_version_num(), 7);
            assert!(ids.insert(event.id), "duplicate id {}", event.id);
        }
    }

    #[test]
    fn times_increase_and_stay_in_the_span() {
        let start = datetime!(2025-03-01 0:00 UTC);
        let end = datetime!(2025-03-02 0:00 UTC);
        let events: Vec<_> = TrafficGenerator::new(1)
            .with_time_span(start, end, 10_000)
            .collect();
        assert!(events.windows(2).all(|pair| pair[0].time <= pair[1].time));
        assert!(
            events
                .iter()
                .all(|event| event.time >= start && event.time < end)
        );
        assert!(
            events
                .iter()
                .all(|event| event.time.nanosecond() % 1_000 == 0)
        );
        // Jitter: times are not simply evenly spaced.
        let gaps: HashSet<_> = events
            .windows(2)
            .map(|pair| pair[1].time - pair[0].time)
            .collect();
        assert!(gaps.len() > 100);
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        let first = sample(2_000);
        assert_eq!(first, sample(2_000));
        let other = sample_with_seed(43, 2_000);
        assert_ne!(first[0].id, other[0].id);
        assert_ne!(first[0].request_id, other[0].request_id);
    }

    #[test]
    fn ids_do_not_depend_on_the_time_span() {
        let default_span: Vec<Uuid> = TrafficGenerator::new(9)
            .take(100)
            .map(|event| event.id)
            .collect();
        let fixed_span: Vec<Uuid> = sample_with_seed(9, 100)
            .iter()
            .map(|event| event.id)
            .collect();
        assert_eq!(default_span, fixed_span);
    }

    #[test]
    fn every_known_resource_type_action_and_build_reason_appears_in_50k() {
        let events = sample(50_000);
        let resource_types: HashSet<_> = events
            .iter()
            .map(|event| event.resource_type.clone())
            .collect();
        let actions: HashSet<_> = events.iter().map(|event| event.action.clone()).collect();
        let reasons: HashSet<_> = events
            .iter()
            .filter_map(|event| event.build_reason.clone())
            .collect();
        for resource_type in ResourceType::ALL {
            assert!(resource_types.contains(resource_type), "no {resource_type}");
        }
        for action in Action::ALL {
            assert!(actions.contains(action), "no {action}");
        }
        for reason in BuildReason::ALL {
            assert!(reasons.contains(reason), "no {reason}");
        }
    }

    #[test]
    fn proportions_are_plausible() {
        let events = sample(100_000);
        let total = events.len() as f64;
        let share = |predicate: &dyn Fn(&AuditEvent) -> bool| {
            events.iter().filter(|event| predicate(event)).count() as f64 / total
        };
        let builds = share(&|event| event.resource_type == ResourceType::WorkspaceBuild);
        assert!((0.30..0.45).contains(&builds), "builds {builds}");
        let logins = share(&|event| event.action == Action::Login);
        assert!((0.08..0.16).contains(&logins), "logins {logins}");
        let deletes = share(&|event| event.action == Action::Delete);
        assert!(deletes < 0.06, "deletes {deletes}");
        let failed = share(&|event| event.status_code >= 400);
        assert!((0.03..0.07).contains(&failed), "failed {failed}");
        let redirects = share(&|event| event.status_code == 303);
        assert!((0.001..0.03).contains(&redirects), "redirects {redirects}");
        let background = share(&|event| event.user.is_none());
        assert!(
            (0.05..0.25).contains(&background),
            "background {background}"
        );
        let site_wide = share(&|event| event.organization.is_none());
        assert!((0.10..0.35).contains(&site_wide), "site-wide {site_wide}");
        let v6 = share(&|event| matches!(event.ip, Some(IpAddr::V6(_))));
        assert!((0.05..0.30).contains(&v6), "ipv6 {v6}");

        let mut reasons: HashMap<BuildReason, usize> = HashMap::new();
        for reason in events.iter().filter_map(|event| event.build_reason.clone()) {
            *reasons.entry(reason).or_default() += 1;
        }
        let common = reasons[&BuildReason::Initiator]
            + reasons[&BuildReason::Autostart]
            + reasons[&BuildReason::Autostop];
        assert!(
            common * 10 > reasons.values().sum::<usize>() * 6,
            "{reasons:?}"
        );
    }

    #[test]
    fn events_have_coders_shapes() {
        for event in sample(20_000) {
            let failed = event.status_code >= 400 || event.status_code == 303;
            if failed || matches!(event.action, Action::Login | Action::Logout) {
                assert!(event.diff.is_empty(), "{event:?}");
            }
            match (&event.resource_type, &event.action) {
                (ResourceType::WorkspaceBuild, _) => {
                    assert!(event.build_reason.is_some());
                    for key in [
                        "workspace_name",
                        "build_number",
                        "build_reason",
                        "workspace_owner",
                        "workspace_id",
                    ] {
                        assert!(
                            event.additional_fields.contains_key(key),
                            "{key} in {event:?}"
                        );
                    }
                    assert_eq!(
                        event.additional_fields["build_reason"],
                        Value::String(event.build_reason.as_ref().unwrap().to_string())
                    );
                }
                (ResourceType::Workspace, Action::Create) => assert!(event.build_reason.is_some()),
                _ => assert!(event.build_reason.is_none()),
            }
            if event.user.is_none() {
                assert!(
                    event.additional_fields.contains_key("automatic_actor"),
                    "{event:?}"
                );
                assert!(event.additional_fields.contains_key("automatic_subsystem"));
                assert!(event.ip.is_none());
            } else {
                assert!(event.ip.is_some() && !event.user_agent.is_empty());
            }
            for (_, entry) in &event.diff {
                if entry.secret {
                    assert!(entry.old.is_null() && entry.new.is_null());
                }
            }
        }
    }

    #[test]
    fn diffs_include_secrets_and_targets_include_mixed_case() {
        let events = sample(20_000);
        assert!(
            events
                .iter()
                .any(|event| event.diff.iter().any(|(_, entry)| entry.secret))
        );
        assert!(
            events
                .iter()
                .any(|event| event.diff.iter().any(|(_, entry)| !entry.secret))
        );
        assert!(
            events
                .iter()
                .any(|event| event.resource_target.chars().any(char::is_uppercase))
        );
        assert!(
            events.iter().any(|event| event.organization.is_none()
                && event.resource_type == ResourceType::License)
        );
    }

    #[test]
    fn world_has_organizations_and_thousands_of_users_some_mixed_case() {
        let generator = TrafficGenerator::new(5);
        assert_eq!(generator.organizations().len(), 5);
        for organization in generator.organizations() {
            assert_eq!(organization.name, organization.name.to_lowercase());
        }
        assert!(
            generator
                .organizations()
                .iter()
                .any(|o| o.display_name.chars().any(char::is_uppercase))
        );
        let users = generator.users();
        assert_eq!(users.len(), NUM_USERS);
        let usernames: HashSet<_> = users
            .iter()
            .map(|user| user.username.to_lowercase())
            .collect();
        assert_eq!(
            usernames.len(),
            users.len(),
            "usernames are unique ignoring case"
        );
        assert!(
            users
                .iter()
                .any(|user| user.username.chars().any(char::is_uppercase))
        );
        assert!(
            users
                .iter()
                .any(|user| user.email.chars().any(char::is_uppercase))
        );
        assert!(
            users
                .iter()
                .all(|user| user.email.contains('@') && !user.email.contains(".."))
        );
        // Every generated actor is one of the listed users.
        let ids: HashSet<_> = users.iter().map(|user| user.id).collect();
        for event in generator.take(5_000) {
            if let Some(user) = &event.user {
                assert!(ids.contains(&user.id));
            }
        }
    }

    #[test]
    fn iterator_reports_its_exact_length() {
        let mut generator = TrafficGenerator::new(3).with_time_span(
            datetime!(2025-01-01 0:00 UTC),
            datetime!(2025-01-02 0:00 UTC),
            10,
        );
        assert_eq!(generator.len(), 10);
        generator.next();
        assert_eq!(generator.len(), 9);
        assert_eq!(generator.by_ref().count(), 9);
        assert!(generator.next().is_none());
    }

    /// SHA-256 over the `Debug` form of the first 20,000 events of `seed`, one per line.
    fn digest(seed: u64) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let events = TrafficGenerator::new(seed).with_time_span(
            datetime!(2025-01-01 0:00 UTC),
            datetime!(2025-02-01 0:00 UTC),
            20_000,
        );
        for event in events {
            hasher.update(format!("{event:?}\n").as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The traffic tests, benches and oracles rely on: these digests were recorded from the
    /// generator as it was inside auditlog-producer, so a refactor that changes any id,
    /// time or field of any event (say, by reordering random draws) fails here.
    #[test]
    fn seeds_give_the_traffic_they_always_gave() {
        assert_eq!(
            digest(1),
            "0098cdb8be81c06237ab9a780f13f4a437e82ba86286164f67c38dab37d02919"
        );
        assert_eq!(
            digest(7),
            "7f78eed7fb6c14837f025dcbc792b0ffcd2947acc480f5ffc84f82b2e4284b01"
        );
    }
}
