//! Timer wheel micro-benchmarks at 100k live timers: insert, cancel, and expiry.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Instant;
use volley::timer::Wheel;

const LIVE: u64 = 100_000;

fn wheel(c: &mut Criterion) {
    let mut g = c.benchmark_group("wheel_100k_live");
    // A wheel with 100k timers spread over 0..30 s, as with 100k requests in flight.
    let mut w: Wheel<u64> = Wheel::new(Instant::now());
    for i in 0..LIVE {
        w.insert((i * 7919) % 30_000 + 1, i);
    }
    let mut x = 0u64;
    g.bench_function("insert_then_cancel", |b| {
        b.iter(|| {
            x = x.wrapping_add(7919);
            let k = w.insert(x % 30_000 + 1, x);
            black_box(w.cancel(k));
        })
    });
    g.bench_function("next_deadline", |b| b.iter(|| black_box(w.next_deadline())));
    // Time per iteration is for expiring all 100k timers (divide by 100k per timer).
    g.sample_size(10);
    g.bench_function("expire_all_100k", |b| {
        b.iter_batched(
            || {
                let mut w: Wheel<u64> = Wheel::new(Instant::now());
                for i in 0..LIVE {
                    w.insert((i * 7919) % 30_000 + 1, i);
                }
                (w, Vec::with_capacity(LIVE as usize))
            },
            |(mut w, mut fired)| {
                while let Some(d) = w.next_deadline() {
                    w.advance(d, &mut fired);
                }
                assert_eq!(fired.len() as u64, LIVE);
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, wheel);
criterion_main!(benches);
