//! Delta updates on a realistic JSON state topic: what a subscriber is
//! sent per event, and what making it costs, for a whole event (its JSON
//! frame), the same frame compressed as the server does for a client that
//! negotiated permessage-deflate (each message on its own), and the event
//! as a Fossil delta against the one before it.
//!
//! The states: a device's state of some 2 KB of JSON (24 readings and a
//! few scalars), of which a few fields change per event (`few`: the
//! sequence number, the temperature, the status every other event, one
//! reading); and the same with a quarter of the readings changing
//! (`many`), where a delta saves less.
//!
//! Before the timings the bench prints the bytes per event, as a Markdown
//! table. The timings, each beside `memcpy` of the same data: `event`
//! makes one event (what every event costs, whatever its subscribers
//! take); `whole`, `deflated` and `delta` make one event and the form a
//! subscriber is sent (made once per event, whatever the number of
//! subscribers, and shared); `apply` is what a subscriber does with a
//! delta.
//!
//! Run with `cargo bench -p tether-benches --bench delta`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tether_hub::{Event, EventId};

/// Events in a run: each made after the one before it.
const EVENTS: u64 = 64;

/// A device's state after `n` events; `changing` of its 24 readings move
/// with each event.
fn state(n: u64, changing: u64) -> String {
    let mut out =
        String::from("{\"device\":\"pump-7\",\"site\":\"north hall, level 2\",\"firmware\":\"4.2.1\",");
    write!(
        out,
        "\"seq\":{n},\"temperature\":{:.1},\"status\":\"{}\",\"readings\":[",
        20.5 + n as f64 / 10.0,
        if n.is_multiple_of(2) { "ok" } else { "warm" }
    )
    .unwrap();
    for i in 0..24u64 {
        // Reading `i` moves at event `n` when it is among the `changing`
        // ones of this event.
        let moves = (i + 24 - n % 24) % 24 < changing;
        let value = if moves { 1000 + n * 7 + i } else { 1000 + i };
        write!(
            out,
            "{}{{\"sensor\":\"pressure-{i:02}\",\"unit\":\"kPa\",\"value\":{value},\"min\":900,\"max\":1200,\"ok\":true}}",
            if i == 0 { "" } else { "," }
        )
        .unwrap();
    }
    out.push_str("]}");
    out
}

fn event(n: u64, data: &str) -> Arc<Event> {
    Event::new(
        Arc::from("state.pump-7"),
        EventId::new(1_718_000_000_000, n),
        "state",
        data,
    )
    .unwrap()
}

struct Scenario {
    name: &'static str,
    changing: u64,
}

const SCENARIOS: [Scenario; 2] = [
    Scenario {
        name: "few",
        changing: 1,
    },
    Scenario {
        name: "many",
        changing: 6,
    },
];

fn states(scenario: &Scenario) -> Vec<String> {
    (0..=EVENTS).map(|n| state(n, scenario.changing)).collect()
}

/// Bytes per event (the mean over the run) of each form, as a Markdown
/// table.
fn print_sizes() {
    println!(
        "| state | data | whole JSON frame | compressed (permessage-deflate) | delta frame | delta, compressed | delta / whole |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for scenario in &SCENARIOS {
        let states = states(scenario);
        let events: Vec<Arc<Event>> = (0..).zip(&states).map(|(n, s)| event(n, s)).collect();
        let (mut data, mut whole, mut deflated, mut delta, mut both) = (0, 0, 0, 0, 0);
        for pair in events.windows(2) {
            let (before, this) = (&pair[0], &pair[1]);
            data += states[this.id().seq() as usize].len();
            whole += this.ws_frame().len();
            deflated += this
                .ws_frame_deflated()
                .map_or(this.ws_frame().len(), |f| f.len());
            let plain_delta = this
                .delta_ws_frame(before)
                .map_or(this.ws_frame().len(), |f| f.len());
            delta += plain_delta;
            // What a permessage-deflate socket in step is sent.
            both += this
                .delta_ws_frame_deflated(before)
                .map_or(plain_delta, |f| f.len());
        }
        let per = |total: usize| total as f64 / EVENTS as f64;
        println!(
            "| {} ({} of 24 readings change) | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} % |",
            scenario.name,
            scenario.changing,
            per(data),
            per(whole),
            per(deflated),
            per(delta),
            per(both),
            100.0 * delta as f64 / whole as f64
        );
    }
}

fn bench(c: &mut Criterion) {
    print_sizes();
    for scenario in &SCENARIOS {
        let states = states(scenario);
        let mut group = c.benchmark_group(format!("delta/{}", scenario.name));
        group.throughput(Throughput::Bytes(states[1].len() as u64));
        let mut at = 0usize;
        let mut next = || {
            at = at % EVENTS as usize + 1;
            at
        };
        let mut out = Vec::new();
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                let n = next();
                out.clear();
                out.extend_from_slice(black_box(states[n].as_bytes()));
                black_box(&out);
            });
        });
        group.bench_function("event", |b| {
            b.iter(|| {
                let n = next();
                black_box(event(n as u64, &states[n]).cost());
            });
        });
        group.bench_function("whole", |b| {
            b.iter(|| {
                let n = next();
                let event = event(n as u64, &states[n]);
                black_box(event.ws_frame().len());
            });
        });
        group.bench_function("deflated", |b| {
            b.iter(|| {
                let n = next();
                let event = event(n as u64, &states[n]);
                black_box(event.ws_frame_deflated().map(|f| f.len()));
            });
        });
        // The event before each one, made beforehand: in the hub it is the
        // topic's last event, already made.
        let before: Vec<Arc<Event>> = (0..).zip(&states).map(|(n, s)| event(n, s)).collect();
        group.bench_function("delta", |b| {
            b.iter(|| {
                let n = next();
                let event = event(n as u64, &states[n]);
                black_box(event.delta_ws_frame(&before[n - 1]).map(|f| f.len()));
            });
        });
        let deltas: Vec<String> = (1..states.len())
            .map(|n| tether_delta::encode_str(&states[n - 1], &states[n]))
            .collect();
        group.bench_function("apply", |b| {
            b.iter(|| {
                let n = next();
                let built =
                    tether_delta::apply(states[n - 1].as_bytes(), deltas[n - 1].as_bytes(), 1 << 20).unwrap();
                black_box(built.len());
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
