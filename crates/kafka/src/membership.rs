//! A member of the consumer group: `JoinGroup` (v2) and `SyncGroup` (v1)
//! to get its partitions (the leader assigning everyone's, with the
//! range assignor), `Heartbeat` (v1) to keep them, `LeaveGroup` (v1) to
//! hand them back at once. Plain, non-flexible versions, as the offsets'
//! requests.

use std::collections::BTreeMap;
use std::time::Duration;

use rskafka::client::Client;

use crate::answers::{self, MEMBER_ID_REQUIRED};
use crate::assign;
use crate::error::Error;
use crate::group::{CLIENT_ID, Coordinator, Partition};
use crate::wire::Request;

const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const LEAVE_GROUP: i16 = 13;
const SYNC_GROUP: i16 = 14;

/// How many times in a row a join may be sent back (a member id to
/// take, a rebalance begun again) before it counts as failed.
const MAX_REJOINS: usize = 10;

/// This consumer in its group: the id the coordinator gave it (kept
/// across connections, so that a reconnecting member takes its place
/// back) and the generation it holds its partitions in.
#[derive(Debug, Default)]
pub(crate) struct Member {
    id: String,
    generation: Option<i32>,
}

/// How a member takes part: its topics and timeouts.
pub(crate) struct Terms<'a> {
    pub(crate) topics: &'a [String],
    /// The coordinator drops a member it hears nothing from for this long.
    pub(crate) session_timeout: Duration,
    /// How long the coordinator waits for every member to join again in
    /// a rebalance.
    pub(crate) rebalance_timeout: Duration,
}

impl Member {
    /// Its id and generation, for an `OffsetCommit`: none (-1, "") when it
    /// holds no generation.
    pub(crate) fn commit_as(&self) -> (i32, &str) {
        match self.generation {
            Some(generation) => (generation, &self.id),
            None => (-1, ""),
        }
    }

    /// The generation it holds, if any.
    pub(crate) fn generation(&self) -> Option<i32> {
        self.generation
    }

    /// Joins the group (again) and gets its partitions; as the leader,
    /// assigns every member's first, from `client`'s metadata.
    pub(crate) async fn join(
        &mut self,
        coordinator: &mut Coordinator,
        client: &Client,
        terms: &Terms<'_>,
    ) -> Result<Vec<Partition>, Error> {
        self.generation = None;
        for _ in 0..MAX_REJOINS {
            let joined = self.join_once(coordinator, terms).await?;
            self.id.clone_from(&joined.member);
            if joined.code == MEMBER_ID_REQUIRED {
                continue;
            }
            let assignments = if joined.leader == joined.member {
                if joined.protocol != assign::RANGE {
                    return Err(Error::Protocol(format!(
                        "the group chose the assignor {:?}, not range",
                        joined.protocol
                    )));
                }
                leader_assigns(client, &joined.members).await?
            } else {
                BTreeMap::new()
            };
            match self.sync(coordinator, joined.generation, &assignments).await {
                Ok(partitions) => {
                    self.generation = Some(joined.generation);
                    let (ours, others): (Vec<_>, Vec<_>) = partitions
                        .into_iter()
                        .partition(|(t, _)| terms.topics.contains(t));
                    if !others.is_empty() {
                        log::warn!(
                            "kafka: assigned partitions of topics not consumed, left alone: {others:?}"
                        );
                    }
                    return Ok(ours);
                }
                Err(e) if e.rebalancing() => {
                    if e.unknown_member() {
                        self.id.clear();
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Protocol(format!(
            "the group {} was still rebalancing after {MAX_REJOINS} joins",
            coordinator.group()
        )))
    }

    async fn join_once(
        &mut self,
        coordinator: &mut Coordinator,
        terms: &Terms<'_>,
    ) -> Result<answers::Joined, Error> {
        loop {
            let mut request = Request::new(JOIN_GROUP, 2, coordinator.next_correlation(), CLIENT_ID);
            request.string(coordinator.group());
            request.i32(millis(terms.session_timeout));
            request.i32(millis(terms.rebalance_timeout));
            request.string(&self.id);
            request.string("consumer");
            request.len(1);
            request.string(assign::RANGE);
            request.bytes(&assign::subscription(terms.topics));
            let body = coordinator.call_within(request, terms.rebalance_timeout).await?;
            match answers::joined(&body) {
                // Forgotten (its session ended): joins as a new member,
                // once.
                Err(e) if e.unknown_member() && !self.id.is_empty() => self.id.clear(),
                other => return other,
            }
        }
    }

    async fn sync(
        &mut self,
        coordinator: &mut Coordinator,
        generation: i32,
        assignments: &BTreeMap<String, Vec<Partition>>,
    ) -> Result<Vec<Partition>, Error> {
        let mut request = Request::new(SYNC_GROUP, 1, coordinator.next_correlation(), CLIENT_ID);
        request.string(coordinator.group());
        request.i32(generation);
        request.string(&self.id);
        request.len(assignments.len());
        for (member, partitions) in assignments {
            request.string(member);
            request.bytes(&assign::assignment(partitions));
        }
        // A follower's sync waits for the leader's.
        let body = coordinator.call_within(request, Duration::from_secs(5)).await?;
        answers::assignment(&answers::synced(&body)?)
    }

    /// Tells the coordinator it is alive; an error that is
    /// [`Error::rebalancing`] means: join again.
    pub(crate) async fn heartbeat(&mut self, coordinator: &mut Coordinator) -> Result<(), Error> {
        let generation = self.generation.unwrap_or(-1);
        let mut request = Request::new(HEARTBEAT, 1, coordinator.next_correlation(), CLIENT_ID);
        request.string(coordinator.group());
        request.i32(generation);
        request.string(&self.id);
        let body = coordinator.call(request).await?;
        let answer = answers::acknowledged(&body, "Heartbeat");
        if let Err(e) = &answer
            && e.unknown_member()
        {
            self.id.clear();
        }
        answer
    }

    /// Leaves the group, so that its partitions go to the others now
    /// rather than after its session timeout.
    pub(crate) async fn leave(&mut self, coordinator: &mut Coordinator) -> Result<(), Error> {
        if self.id.is_empty() {
            return Ok(());
        }
        let mut request = Request::new(LEAVE_GROUP, 1, coordinator.next_correlation(), CLIENT_ID);
        request.string(coordinator.group());
        request.string(&self.id);
        let body = coordinator.call(request).await?;
        self.id.clear();
        self.generation = None;
        answers::acknowledged(&body, "LeaveGroup")
    }
}

/// The leader's work: every member's subscription read, the partition
/// counts of their topics from the cluster's metadata, the ranges cut.
async fn leader_assigns(
    client: &Client,
    members: &[(String, Vec<u8>)],
) -> Result<BTreeMap<String, Vec<Partition>>, Error> {
    let mut subscriptions = Vec::with_capacity(members.len());
    for (id, metadata) in members {
        subscriptions.push((id.clone(), answers::subscription(metadata)?));
    }
    let topics = client.list_topics().await?;
    let counts: BTreeMap<String, i32> = topics
        .into_iter()
        .filter(|t| subscriptions.iter().any(|(_, s)| s.contains(&t.name)))
        .map(|t| {
            let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
            (t.name, count)
        })
        .collect();
    Ok(assign::range(&subscriptions, &counts))
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
