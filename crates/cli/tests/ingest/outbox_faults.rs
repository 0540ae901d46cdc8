//! The outbox under faults, each checked by the one checker (every
//! committed row delivered once, in order per topic, none rolled back):
//! the database restarted while a batch is published and not deleted;
//! the node's connection to it cut then (a proxy in the test closes both
//! ends and refuses it for a while); the node killed then (SIGKILL) and
//! started again on its data; two nodes on one table, the active one
//! killed; two nodes on one bus (Redis), the active one killed between a
//! publish and its delete.
//!
//! A batch is held published and not deleted by [`Holder`]: the
//! consumer's delete waits, in a trigger, for an advisory lock the test
//! holds, so the fault always strikes inside that window. Rows are
//! written between faults, so every commit's outcome is known.

use super::checker::{Expected, Follower, assert_delivered_once};
use super::*;

use tether_testkit::proxy::Proxy;

/// Holds the consumers' deletes: a trigger on the table waits for an
/// advisory lock this holds, so that a node can be killed while its rows
/// are published and not yet deleted.
struct Holder(postgres::Client);

impl Holder {
    fn new(pg: &Postgres) -> Holder {
        pg.psql(
            "CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$; \
             CREATE TRIGGER hold BEFORE DELETE ON tether_outbox \
             FOR EACH STATEMENT EXECUTE FUNCTION hold();",
        );
        let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
        client.execute("SELECT pg_advisory_lock(4242)", &[]).unwrap();
        Holder(client)
    }

    /// Waits until a consumer's delete waits for the lock.
    fn wait_for_the_delete(&self, pg: &Postgres) {
        wait_until("the delete waits", || {
            pg.psql(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = 'tether-outbox' AND wait_event_type = 'Lock'",
            ) == "1\n"
        });
    }

    /// Lets the deletes go (and takes the trigger away), once `live`
    /// consumers' sessions are left: a killed node's ends when its
    /// backend, let go, finds its connection gone.
    fn release(mut self, pg: &Postgres, live: usize) {
        self.0.execute("SELECT pg_advisory_unlock(4242)", &[]).unwrap();
        wait_until("the dead node's session ends", || {
            pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tether-outbox'")
                == format!("{live}\n")
        });
        pg.psql("DROP TRIGGER hold ON tether_outbox");
    }
}

/// The topics the rows go to, in turn.
const TOPICS: [&str; 2] = ["a", "b"];

/// Writes `rows` rows named `LABEL-I`, to the topics in turn, five a
/// transaction, then a transaction of two that rolls back; records them.
fn write(pg: &Postgres, expected: &mut Expected, label: &str, rows: usize) {
    for chunk in (0..rows).collect::<Vec<_>>().chunks(5) {
        let mut sql = String::from("BEGIN; ");
        for &i in chunk {
            let (topic, data) = (TOPICS[i % TOPICS.len()], format!("{label}-{i}"));
            sql.push_str(&insert(topic, &data));
            expected.commit(topic, &data);
        }
        pg.psql(&format!("{sql} COMMIT;"));
    }
    let rolled_back: Vec<String> = TOPICS
        .iter()
        .map(|t| format!("{label}-rolled-back-{t}"))
        .collect();
    let mut sql = String::from("BEGIN; ");
    for (topic, data) in TOPICS.iter().zip(&rolled_back) {
        sql.push_str(&insert(topic, data));
        expected.roll_back(data);
    }
    pg.psql(&format!("{sql} ROLLBACK;"));
}

/// Commits a last row to each topic, and reads each follower up to it:
/// everything before it has been delivered then, or lost.
fn fence(pg: &Postgres, expected: &mut Expected, followers: &mut [Follower]) {
    for follower in followers.iter() {
        let data = format!("fence-{}", follower.topic);
        pg.psql(&insert(&follower.topic, &data));
        expected.commit(&follower.topic, &data);
    }
    for follower in followers {
        let data = format!("fence-{}", follower.topic);
        follower.read_until(&data);
    }
}

fn followers(node: &Node) -> [Follower; 2] {
    TOPICS.map(|topic| {
        let mut follower = Follower::new(topic);
        follower.connect(node.addr);
        follower
    })
}

/// Reads the first batch of five (three rows of `a`, two of `b`): what
/// the node published and has not deleted while the holder holds.
fn read_first_batch(followers: &mut [Follower; 2]) {
    followers[0].read(3);
    followers[1].read(2);
}

fn table_empties(pg: &Postgres) {
    wait_until("the table empties", || {
        pg.psql("SELECT count(*) FROM tether_outbox") == "0\n"
    });
}

/// A node of `url` keeping its events in `data`, batches of five.
fn node(url: &str, data: &Path) -> Node {
    Node::start_with(
        Some(data),
        &["--outbox-batch", "5"],
        &[("TETHER_OUTBOX_URL", url)],
    )
}

#[test]
fn the_database_restarted_mid_batch_every_row_delivered_once_in_order() {
    let Some(mut pg) = Postgres::start() else { return };
    pg.psql(&page_sql()[0]);
    let holder = Holder::new(&pg);
    let dir = TempDir::new("db-restart");
    let node = node(&pg.url(), &dir.0.join("data"));
    wait_until("the node publishes the table", || node.active());
    let mut expected = Expected::default();
    let mut followers = followers(&node);
    write(&pg, &mut expected, "before", 20);
    read_first_batch(&mut followers);
    holder.wait_for_the_delete(&pg);
    // Immediate shutdown: the held transaction dies with the server, the
    // batch's rows stay; the holder's session too.
    pg.restart();
    drop(holder);
    wait_until("the lost connection counted", || {
        node.metric("tether_outbox_database_errors_total{table=\"tether_outbox\"}") >= 1
    });
    write(&pg, &mut expected, "after", 10);
    fence(&pg, &mut expected, &mut followers);
    assert_delivered_once(&expected, &followers.each_ref());
    table_empties(&pg);
}

#[test]
fn the_connection_cut_mid_batch_every_row_delivered_once_in_order() {
    let Some(pg) = Postgres::start() else { return };
    pg.psql(&page_sql()[0]);
    let proxy = Proxy::start(&format!("127.0.0.1:{}", pg.port));
    let url = format!("postgres://postgres@{}/postgres", proxy.addr());
    let holder = Holder::new(&pg);
    let dir = TempDir::new("cut");
    let node = node(&url, &dir.0.join("data"));
    wait_until("the node publishes the table", || node.active());
    let mut expected = Expected::default();
    let mut followers = followers(&node);
    write(&pg, &mut expected, "before", 20);
    read_first_batch(&mut followers);
    holder.wait_for_the_delete(&pg);
    // Cut, and kept from the database until the cut session has ended
    // (let go, its delete finds its client gone; its transaction rolls
    // back).
    proxy.set_down(true);
    proxy.cut();
    holder.release(&pg, 0);
    proxy.set_down(false);
    wait_until("the lost connection counted", || {
        node.metric("tether_outbox_database_errors_total{table=\"tether_outbox\"}") >= 1
    });
    write(&pg, &mut expected, "after", 10);
    fence(&pg, &mut expected, &mut followers);
    assert_delivered_once(&expected, &followers.each_ref());
    table_empties(&pg);
}

#[test]
fn a_node_killed_between_a_publish_and_the_delete_publishes_nothing_twice() {
    let Some(pg) = Postgres::start() else { return };
    pg.psql(&page_sql()[0]);
    let holder = Holder::new(&pg);
    let dir = TempDir::new("killed");
    let data = dir.0.join("data");
    let mut node = node(&pg.url(), &data);
    wait_until("the node publishes the table", || node.active());
    let mut expected = Expected::default();
    let mut followers = followers(&node);
    write(&pg, &mut expected, "before", 20);
    read_first_batch(&mut followers);
    holder.wait_for_the_delete(&pg);
    node.process.kill();
    // The dead node's transaction rolls back: all its rows are there.
    holder.release(&pg, 0);
    assert_eq!(pg.psql("SELECT count(*) FROM tether_outbox"), "20\n");

    // Started again on its data, it publishes the batch again under its
    // keys: the hub (its log read back) knows them and makes no event of
    // them. The followers resume after the last event they saw.
    let node = self::node(&pg.url(), &data);
    for follower in &mut followers {
        follower.connect(node.addr);
    }
    write(&pg, &mut expected, "after", 10);
    fence(&pg, &mut expected, &mut followers);
    assert_delivered_once(&expected, &followers.each_ref());
    table_empties(&pg);
}

#[test]
fn two_nodes_on_one_table_the_active_one_killed_publish_each_row_once_in_order() {
    let Some(pg) = Postgres::start() else { return };
    pg.psql(&page_sql()[0]);
    // One with the URL from the environment, the other from a file.
    let dir = TempDir::new("two");
    let url_file = dir.write("outbox-url", format!("{}\n", pg.url()).as_bytes());
    let first = Node::start(&pg.url(), None);
    let second = Node::start_with(None, &["--outbox-url-file", &url_file], &[]);
    wait_until("one of them publishes the table", || {
        first.active() || second.active()
    });
    let (mut active, standby) = if first.active() {
        (first, second)
    } else {
        (second, first)
    };
    assert!(!standby.active());
    // Without a bus, each node's subscribers get what that node
    // published: the history is the first node's, then the second's.
    let mut expected = Expected::default();
    let mut before = followers(&active);
    write(&pg, &mut expected, "before", 20);
    fence(&pg, &mut expected, &mut before);
    table_empties(&pg);
    active.process.kill();
    wait_until("the other node takes over", || standby.active());
    let mut after = followers(&standby);
    write(&pg, &mut expected, "after", 20);
    // The fences again, under names of their own.
    for follower in &mut after {
        let data = format!("last-{}", follower.topic);
        pg.psql(&insert(&follower.topic, &data));
        expected.commit(&follower.topic, &data);
        follower.read_until(&data);
    }
    let [a1, b1] = &before;
    let [a2, b2] = &after;
    assert_delivered_once(&expected, &[a1, a2, b1, b2]);
}

#[cfg(feature = "redis")]
#[test]
fn two_nodes_through_redis_the_active_one_killed_between_a_publish_and_the_delete() {
    if !support::available("two_nodes_through_redis_the_active_one_killed_between_a_publish_and_the_delete") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    pg.psql(&page_sql()[0]);
    let redis = support::RedisServer::start();
    let url = pg.url();
    let bus = [
        "--redis",
        &redis.url(),
        "--redis-prefix",
        "outbox-test:",
        "--outbox-batch",
        "5",
    ];
    let envs = [("TETHER_OUTBOX_URL", url.as_str())];
    let first = Node::start_with(None, &bus, &envs);
    let second = Node::start_with(None, &bus, &envs);
    wait_until("one of them publishes the table", || {
        first.active() || second.active()
    });
    let (mut active, standby) = if first.active() {
        (first, second)
    } else {
        (second, first)
    };
    // Subscribers of the node that stands by get what the other
    // publishes, through Redis.
    let mut expected = Expected::default();
    let mut followers = followers(&standby);
    let holder = Holder::new(&pg);
    write(&pg, &mut expected, "before", 20);
    read_first_batch(&mut followers);
    holder.wait_for_the_delete(&pg);
    active.process.kill();
    holder.release(&pg, 1);
    // The other node takes the table over at once: the batch's rows were
    // still there (the killed node's delete rolled back), and it
    // publishes them again, under their keys: Redis knows them, no event
    // is made.
    write(&pg, &mut expected, "after", 10);
    fence(&pg, &mut expected, &mut followers);
    assert!(standby.active());
    assert_delivered_once(&expected, &followers.each_ref());
    table_empties(&pg);
}
