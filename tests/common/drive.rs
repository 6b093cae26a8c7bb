//! Driving an engine in the test's thread under a hard limit, with a caller that
//! meddles (cancels one request, stops the run), checking that each request pulled
//! from the source got exactly one outcome. The engine is stepped with
//! `step(Some(100 ms))`, so a run that hangs fails within the limit instead of
//! hanging the test.

use super::{requests, Collect};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use volley::engine::{Config, Engine};

/// What the caller does to the run while it goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meddle {
    /// Cancels this tag (1-based) at the first step after this many steps.
    pub cancel: Option<(u64, usize)>,
    /// Sets `Config::stop` after this many steps.
    pub stop_after: Option<usize>,
}

/// Runs `urls` (tags 1..) under the hard limit `limit`; the outcomes sorted by tag, or why
/// the run is wrong: it hung, or a request pulled from the source got no outcome or
/// more than one (all of them are pulled unless the run was stopped).
pub fn drive(
    mut c: Config,
    urls: &[String],
    m: Meddle,
    limit: Duration,
) -> Result<Collect, String> {
    let stop = Arc::new(AtomicBool::new(false));
    if m.stop_after.is_some() {
        c.stop = Some(stop.clone());
    }
    let mut e = Engine::new(c, requests(urls), Collect::default()).unwrap();
    let until = Instant::now() + limit;
    let mut steps = 0;
    while e
        .step(Some(Duration::from_millis(100)))
        .map_err(|x| x.to_string())?
    {
        // After a stop the source is not drained: the turn that saw it is the last.
        if stop.load(Ordering::SeqCst) {
            break;
        }
        steps += 1;
        if Instant::now() > until {
            let done: Vec<u64> = e.handler().outcomes.iter().map(|o| o.tag).collect();
            return Err(format!(
                "hung: {} of {} requests done after {:?} (done: {done:?}, stats {:?})",
                done.len(),
                urls.len(),
                limit,
                e.stats()
            ));
        }
        if let Some((tag, at)) = m.cancel {
            if steps == at {
                e.cancel(tag);
            }
        }
        if m.stop_after == Some(steps) {
            stop.store(true, Ordering::SeqCst);
        }
    }
    let pulled = e.stats().started;
    let (_, mut r) = e.into_parts();
    r.outcomes.sort_by_key(|o| o.tag);
    let tags: Vec<u64> = r.outcomes.iter().map(|o| o.tag).collect();
    if m.stop_after.is_none() && pulled != urls.len() as u64 {
        return Err(format!("{pulled} of {} requests pulled", urls.len()));
    }
    // Sources hand requests out in order: those pulled are the first ones.
    let want: Vec<u64> = (1..=pulled).collect();
    if tags != want {
        return Err(format!("outcomes by tag {tags:?}, want {want:?}"));
    }
    Ok(r)
}
