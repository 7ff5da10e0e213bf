//! The measurement behind the token cache's crate: a hit (get of a present key, value an
//! `Arc`) and an insert-with-eviction in `quick_cache` (what tokengate uses), `dashmap` (no
//! bound of its own: the figure is a lower bound, before any eviction scheme), and `moka`
//! (sync), with the key tokengate uses (a 32-byte digest). Hits are also measured from two
//! threads at once, since concurrent hits must not serialise.
//!
//! Run with `cargo bench --bench cache`. Judge differences with instruction counts
//! (`valgrind --tool=callgrind`) rather than one noisy run.

use std::hint::black_box;
use std::sync::Arc;
use tokio::time::Instant;

use criterion::Criterion;

type Key = [u8; 32];
const ENTRIES: usize = 100_000;

fn key(n: usize) -> Key {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&(n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    key
}

/// A cache under test: get and insert.
trait Candidate: Send + Sync {
    fn get(&self, key: &Key) -> Option<Arc<u64>>;
    fn insert(&self, key: Key, value: Arc<u64>);
}

impl Candidate for quick_cache::sync::Cache<Key, Arc<u64>> {
    fn get(&self, key: &Key) -> Option<Arc<u64>> {
        quick_cache::sync::Cache::get(self, key)
    }
    fn insert(&self, key: Key, value: Arc<u64>) {
        quick_cache::sync::Cache::insert(self, key, value);
    }
}

impl Candidate for dashmap::DashMap<Key, Arc<u64>> {
    fn get(&self, key: &Key) -> Option<Arc<u64>> {
        dashmap::DashMap::get(self, key).map(|entry| entry.value().clone())
    }
    fn insert(&self, key: Key, value: Arc<u64>) {
        dashmap::DashMap::insert(self, key, value);
    }
}

impl Candidate for moka::sync::Cache<Key, Arc<u64>> {
    fn get(&self, key: &Key) -> Option<Arc<u64>> {
        moka::sync::Cache::get(self, key)
    }
    fn insert(&self, key: Key, value: Arc<u64>) {
        moka::sync::Cache::insert(self, key, value);
    }
}

/// quick_cache with more shards than its default (4 per core), as tokengate configures it.
fn sharded_quick_cache(shards: usize) -> quick_cache::sync::Cache<Key, Arc<u64>> {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(ENTRIES)
        .weight_capacity(ENTRIES as u64)
        .shards(shards)
        .build()
        .expect("options");
    quick_cache::sync::Cache::with_options(
        options,
        quick_cache::UnitWeighter,
        quick_cache::DefaultHashBuilder::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

fn candidates() -> Vec<(&'static str, Arc<dyn Candidate>)> {
    vec![
        (
            "quick_cache",
            Arc::new(quick_cache::sync::Cache::<Key, Arc<u64>>::new(ENTRIES)),
        ),
        ("quick_cache_64_shards", Arc::new(sharded_quick_cache(64))),
        (
            "dashmap",
            Arc::new(dashmap::DashMap::<Key, Arc<u64>>::new()),
        ),
        (
            "moka",
            Arc::new(moka::sync::Cache::<Key, Arc<u64>>::new(ENTRIES as u64)),
        ),
    ]
}

/// Hits per second from `threads` threads for about half a second.
fn concurrent_hits(cache: &Arc<dyn Candidate>, threads: usize) -> f64 {
    let started = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let cache = cache.clone();
                scope.spawn(move || {
                    let mut done = 0u64;
                    let mut n = thread;
                    while started.elapsed().as_millis() < 500 {
                        for _ in 0..1000 {
                            black_box(cache.get(&key(n % 1000)));
                            n += 7;
                        }
                        done += 1000;
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let mut group = criterion.benchmark_group("token_cache");
    for (name, cache) in candidates() {
        for n in 0..1000 {
            cache.insert(key(n), Arc::new(n as u64));
        }
        group.bench_function(format!("{name}/hit"), |b| {
            let mut n = 0;
            b.iter(|| {
                n = (n + 7) % 1000;
                cache.get(black_box(&key(n)))
            })
        });
        group.bench_function(format!("{name}/insert"), |b| {
            let mut n = 1000;
            b.iter(|| {
                n += 1;
                cache.insert(black_box(key(n % (4 * ENTRIES))), Arc::new(1));
            })
        });
        if measuring {
            // The insert benchmark evicted some of the hit keys: put them back first.
            for n in 0..1000 {
                cache.insert(key(n), Arc::new(n as u64));
            }
            println!(
                "{name}: {:.1} M hits/s from 1 thread, {:.1} M hits/s from 2 threads",
                concurrent_hits(&cache, 1) / 1e6,
                concurrent_hits(&cache, 2) / 1e6
            );
        }
    }
    group.finish();
    criterion.final_summary();
}
