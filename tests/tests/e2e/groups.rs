//! Whole-system tests of the ingesters as a consumer group on the real broker: every group
//! protocol the ingester supports, and static membership across a `kill -9`.
//!
//! Each test has its own topic, group and database; the ingesters are real child processes.

use std::time::{Duration, Instant};

use auditlog_e2e::PrivateClickHouse;
use auditlog_e2e::pipeline::{
    AuditlogProcess, PipelineTarget, assert_exact, events, metric_sum, produce_events,
};

const INGEST_TIMEOUT: Duration = Duration::from_secs(180);
const PARTITIONS: i32 = 4;

/// The value of the ingester's `auditlog_ingest_assigned_partitions` gauge.
async fn assigned_partitions(ingester: &AuditlogProcess) -> f64 {
    metric_sum(
        &ingester.metrics().await.unwrap_or_default(),
        "auditlog_ingest_assigned_partitions",
    )
}

/// The target's environment with the librdkafka pass-through properties replaced.
fn with_kafka_properties(target: &PipelineTarget, properties: &str) -> Vec<(&'static str, String)> {
    let mut env = target.env();
    env.retain(|(key, _)| *key != "AUDITLOG_KAFKA_PROPERTIES");
    env.push(("AUDITLOG_KAFKA_PROPERTIES", properties.to_owned()));
    env
}

/// A target whose ClickHouse the test can stop (a private server), its schema applied, and
/// its environment with group timeouts short enough for a test to see members come and go.
async fn on_private_clickhouse(
    prefix: &str,
) -> (
    PrivateClickHouse,
    PipelineTarget,
    Vec<(&'static str, String)>,
) {
    let clickhouse = PrivateClickHouse::start().await;
    let mut target = PipelineTarget::create(prefix, PARTITIONS).await;
    target.clickhouse_url = clickhouse.url();
    target.migrate();
    let env = with_kafka_properties(
        &target,
        "session.timeout.ms=6000,heartbeat.interval.ms=1000",
    );
    (clickhouse, target, env)
}

/// Two members share the partitions; one leaves on SIGTERM and the other takes everything
/// over, with nothing lost and nothing visible twice, under the group protocol that
/// `properties` selects.
async fn two_members_share_then_one_takes_over(prefix: &str, properties: &str) {
    const NUM_EVENTS: usize = 40_000;
    let target = PipelineTarget::create(prefix, PARTITIONS).await;
    target.migrate();
    let env = with_kafka_properties(&target, properties);
    let mut first = target.spawn_ingester_with(&format!("{prefix}_a"), &env, &[]);
    let second = target.spawn_ingester_with(&format!("{prefix}_b"), &env, &[]);
    let all_events = events(5, NUM_EVENTS);
    produce_events(&target.topic, &all_events[..NUM_EVENTS / 2]).await;
    target
        .wait_for_rows((NUM_EVENTS / 2) as u64, INGEST_TIMEOUT)
        .await;

    // Both members hold a share once the group has settled (the second may join after the
    // first took everything, and the move of partitions to it takes a rebalance).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut first_share, mut second_share) = (0.0, 0.0);
    while Instant::now() < deadline {
        first_share = assigned_partitions(&first).await;
        second_share = assigned_partitions(&second).await;
        if first_share >= 1.0 && second_share >= 1.0 && first_share + second_share == 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        (
            first_share + second_share,
            first_share >= 1.0,
            second_share >= 1.0
        ),
        (f64::from(PARTITIONS), true, true),
        "both members work and every partition is assigned once: {first_share} + {second_share}\n{}\n{}",
        first.log(),
        second.log()
    );

    let status = first
        .terminate(Duration::from_secs(60))
        .expect("first exits on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", first.log());
    produce_events(&target.topic, &all_events[NUM_EVENTS / 2..]).await;
    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    assert_exact(
        counts,
        NUM_EVENTS as u64,
        &format!("{}\n{}", first.log(), second.log()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned_partitions(&second).await != f64::from(PARTITIONS) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        assigned_partitions(&second).await,
        f64::from(PARTITIONS),
        "the survivor owns every partition\n{}",
        second.log()
    );

    // The partitions changed hands mid-chain: the survivor carried each chain on from the
    // digest its predecessor recorded last, so the data verifies.
    let mut second = second;
    let status = second.terminate(Duration::from_secs(60)).expect("exits");
    assert!(status.success(), "{}", second.log());
    target.assert_verifies(
        NUM_EVENTS as u64,
        &format!("{}\n{}", first.log(), second.log()),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_classic_eager_protocol_shares_and_hands_over() {
    // The default assignors (range, roundrobin): every rebalance revokes everything.
    two_members_share_then_one_takes_over(
        "group_eager",
        "session.timeout.ms=6000,heartbeat.interval.ms=1000",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cooperative_sticky_assignor_shares_and_hands_over() {
    // Incremental: a rebalance revokes and assigns only the partitions that move.
    two_members_share_then_one_takes_over(
        "group_cooperative",
        "session.timeout.ms=6000,heartbeat.interval.ms=1000,partition.assignment.strategy=cooperative-sticky",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kip_848_consumer_protocol_shares_and_hands_over() {
    // The broker assigns, and owns the session and heartbeat times (the local stack sets
    // them short, as the classic tests set theirs); the client may not set them.
    two_members_share_then_one_takes_over("group_kip848", "group.protocol=consumer").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_killed_and_restarted_consumes_again_before_its_session_expires() {
    const NUM_EVENTS: usize = 30_000;
    // Long enough that only static membership, not the session's expiry, can explain a
    // quick return: a dynamic member's partitions would wait out the 45 s.
    const SESSION: &str = "session.timeout.ms=45000,heartbeat.interval.ms=3000";
    // Well inside the session: on a loaded machine a restarted member, which loads each
    // partition's recorded batches one after another, once took 10.4 s to insert again.
    const RESUME_WITHIN: Duration = Duration::from_secs(30);
    let target = PipelineTarget::create("group_static", PARTITIONS).await;
    target.migrate();
    let env = with_kafka_properties(&target, SESSION);
    let instance = ["--kafka-instance-id", "ingester-0"];
    let all_events = events(6, NUM_EVENTS);
    let mut logs = String::new();

    let mut ingester = target.spawn_ingester_with("group_static", &env, &instance);
    produce_events(&target.topic, &all_events[..NUM_EVENTS / 2]).await;
    target
        .wait_for_rows((NUM_EVENTS / 2) as u64, INGEST_TIMEOUT)
        .await;
    ingester.kill_dash_nine();
    logs.push_str(&ingester.log());

    // Events that arrive while it is dead wait in Kafka for the member to come back.
    produce_events(&target.topic, &all_events[NUM_EVENTS / 2..]).await;
    let before = target.counts().await.expect("counts").1;
    let restarted = Instant::now();
    let ingester = target.spawn_ingester_with("group_static", &env, &instance);
    let resumed = target.wait_for_rows(before + 1, RESUME_WITHIN).await;
    let took = restarted.elapsed();
    eprintln!("static member consumed again {took:?} after its restart");
    assert!(
        resumed.1 > before,
        "a restart with the same instance id consumes again within {RESUME_WITHIN:?} \
         (rows stayed at {before}); logs:\n{logs}\n{}",
        ingester.log()
    );

    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    logs.push_str(&ingester.log());
    assert_exact(counts, NUM_EVENTS as u64, &logs);
}

/// librdkafka keeps an application's pause on a partition across its revocation and a later
/// assignment. This walks the path where that once stranded partitions (seen after a
/// controller was killed): the first member pauses everything in a ClickHouse outage, a
/// second member joins and takes half, the outage ends (the first resumes what it still
/// owns), the second leaves, and the partitions that come back to the first must be
/// consumed, not left paused for good.
#[tokio::test(flavor = "multi_thread")]
async fn partitions_paused_in_a_stall_that_move_away_and_back_are_consumed_again() {
    const NUM_EVENTS: usize = 90_000;
    const STALLED: &str = "pipeline stalled: pausing partitions";
    let (mut clickhouse, target, env) = on_private_clickhouse("group_paused").await;
    // One batch in flight at a time, so the outage backs the pipeline up quickly.
    let args = ["--batch-rows", "1000", "--max-in-flight-batches", "1"];
    let mut first = target.spawn_ingester_with("group_paused_a", &env, &args);
    let all_events = events(8, NUM_EVENTS);
    let thirds = [NUM_EVENTS / 3, 2 * NUM_EVENTS / 3];
    produce_events(&target.topic, &all_events[..thirds[0] / 2]).await;
    target.wait_for_rows(1_000, INGEST_TIMEOUT).await;

    clickhouse.stop();
    produce_events(&target.topic, &all_events[thirds[0] / 2..thirds[0]]).await;
    assert!(
        first.wait_for_log(STALLED, INGEST_TIMEOUT).await,
        "the outage never stalled the first member\n{}",
        first.log()
    );

    // The second member takes half while the first is paused. ClickHouse comes back once the
    // first has begun giving its partitions up, so that its pipeline can flush them within
    // the revocation's deadline (the deadline passing is another path, not this test's).
    // Both log the change (their assignment gauges wait for ClickHouse, which their
    // pipelines need to take partitions on).
    const ASSIGNED: &str = "partitions assigned";
    let second = target.spawn_ingester_with("group_paused_b", &env, &args);
    let deadline = Instant::now() + Duration::from_secs(120);
    assert!(
        first
            .wait_for_log(
                "partitions revoked",
                deadline.saturating_duration_since(Instant::now())
            )
            .await,
        "the first member never gave its partitions up\n{}\n{}",
        first.log(),
        second.log()
    );
    clickhouse.resume().await;
    while !(second.log().contains(ASSIGNED) && first.log().matches(ASSIGNED).count() >= 2) {
        assert!(
            Instant::now() < deadline,
            "the group never shared the partitions\n{}\n{}",
            first.log(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    produce_events(&target.topic, &all_events[thirds[0]..thirds[1]]).await;
    target.wait_for_rows(thirds[1] as u64, INGEST_TIMEOUT).await;

    // The second leaves: its partitions come back to the first, which paused them once.
    let mut second = second;
    let status = second.terminate(Duration::from_secs(60)).expect("exits");
    assert!(status.success(), "{}", second.log());
    produce_events(&target.topic, &all_events[thirds[1]..]).await;
    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    let logs = format!("{}\n{}", first.log(), second.log());
    assert_exact(counts, NUM_EVENTS as u64, &logs);
    let status = first.terminate(Duration::from_secs(60)).expect("exits");
    assert!(status.success(), "{}", first.log());
    target.assert_verifies(
        NUM_EVENTS as u64,
        &format!("{}\n{}", first.log(), second.log()),
    );
}

/// ClickHouse stays down longer than the revocation's deadline while a member joins: the
/// first member lets its partitions go uncommitted, and what it writes for them once
/// ClickHouse is back is neither committed nor signed. The new owner writes and signs those
/// offsets itself, so every event is stored once and the chains verify, with no head off
/// them (the fork `verify` reports as rewritten history).
#[tokio::test(flavor = "multi_thread")]
async fn partitions_let_go_past_the_revocation_deadline_are_signed_by_their_next_owner_only() {
    const NUM_EVENTS: usize = 60_000;
    const GAVE_UP: &str = "the next owner resumes from the last commit";
    let (mut clickhouse, target, env) = on_private_clickhouse("group_deadline").await;
    let args = [
        "--batch-rows",
        "1000",
        "--max-in-flight-batches",
        "1",
        "--revoke-timeout-secs",
        "3",
    ];
    let mut first = target.spawn_ingester_with("group_deadline_a", &env, &args);
    let all_events = events(9, NUM_EVENTS);
    let half = NUM_EVENTS / 2;
    produce_events(&target.topic, &all_events[..half / 2]).await;
    target.wait_for_rows(1_000, INGEST_TIMEOUT).await;

    clickhouse.stop();
    produce_events(&target.topic, &all_events[half / 2..half]).await;
    let second = target.spawn_ingester_with("group_deadline_b", &env, &args);
    assert!(
        first.wait_for_log(GAVE_UP, Duration::from_secs(120)).await,
        "the first member never let a partition go uncommitted\n{}\n{}",
        first.log(),
        second.log()
    );
    // The group hands the partitions on meanwhile; both members' writes wait for ClickHouse.
    tokio::time::sleep(Duration::from_secs(3)).await;
    clickhouse.resume().await;
    produce_events(&target.topic, &all_events[half..]).await;
    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    assert_exact(
        counts,
        NUM_EVENTS as u64,
        &format!("{}\n{}", first.log(), second.log()),
    );
    let mut second = second;
    for member in [&mut first, &mut second] {
        let status = member.terminate(Duration::from_secs(60)).expect("exits");
        assert!(status.success(), "{}", member.log());
    }
    target.assert_verifies(
        NUM_EVENTS as u64,
        &format!("{}\n{}", first.log(), second.log()),
    );
}
