//! Generates a suite's cases into a cache directory, on worker threads
//! (rayon), in case order.
//! A case whose directory holds a manifest for the same case, written by
//! the same generator, is reused; anything else is generated again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use super::Case;
use crate::dataset::{self, DatasetError, Encoding, Manifest, WriteOptions};

/// A case on disk.
#[derive(Debug, Clone)]
pub struct GeneratedCase {
    pub case: Case,
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Taken from the cache rather than generated now.
    pub cached: bool,
}

/// Reported after each case.
#[derive(Debug, Clone, Copy)]
pub struct SuiteProgress {
    pub done: usize,
    pub total: usize,
    pub cached: usize,
    pub spans: u64,
}

fn reusable(dir: &Path, case: &Case) -> Option<Manifest> {
    let manifest = dataset::read_manifest(dir).ok()?;
    let current = concat!("meshtwin-datasets ", env!("CARGO_PKG_VERSION"));
    (manifest.case == case.spec && manifest.generator == current).then_some(manifest)
}

/// Makes sure every case is in `cache/<case name>/`, generating the
/// missing ones on `jobs` threads; returns them in case order.
pub fn generate(
    cases: &[Case],
    cache: &Path,
    jobs: usize,
    progress: &(dyn Fn(SuiteProgress) + Sync),
) -> Result<Vec<GeneratedCase>, DatasetError> {
    let tally = Mutex::new(SuiteProgress {
        done: 0,
        total: cases.len(),
        cached: 0,
        spans: 0,
    });
    let write = WriteOptions {
        encoding: Encoding::Protobuf,
        gzip: true,
    };
    let one = |case: &Case| {
        let dir = cache.join(&case.name);
        let result = match reusable(&dir, case) {
            Some(manifest) => Ok((manifest, true)),
            None => dataset::generate(&case.spec, &dir, write, &mut |_| {})
                .map(|(manifest, _)| (manifest, false)),
        };
        let result = result.map(|(manifest, cached)| GeneratedCase {
            case: case.clone(),
            dir,
            manifest,
            cached,
        });
        let update = {
            let mut tally = tally.lock().expect("tally lock");
            tally.done += 1;
            if let Ok(generated) = &result {
                tally.cached += usize::from(generated.cached);
                tally.spans += generated.manifest.spans;
            }
            *tally
        };
        progress(update);
        result
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| DatasetError::Case(vec![format!("cannot start worker threads: {e}")]))?;
    pool.install(|| cases.par_iter().map(one).collect())
}
