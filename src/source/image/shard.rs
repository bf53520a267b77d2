//! Sharded registry sweeps: which repositories one of N processes (say the
//! pods of a Kubernetes Indexed Job) takes. The partition is by repository,
//! so an image's tags and their shared layers stay in one shard.
//!
//! Every shard reads the whole catalog (and the whole `--images-from` list)
//! anyway, so the split is made over it: the repositories are put in a
//! stable pseudo-random order (FNV-1a, 64 bit, of the path `team/app`, ties
//! by path) and cut into N runs of consecutive repositories whose lengths
//! differ by one at most; shard I takes the I-th run. A plain hash modulo N
//! leaves small registries lopsided (the 50 repositories of benches/sweep.rs
//! by FNV-1a modulo 8 gave shards of 0 to 11 repositories). The hash order,
//! not the catalog's alphabetical one, spreads a team's `team/*`
//! repositories over the shards.
//!
//! The split is a function of the set of repositories: shards that see the
//! same catalog agree without talking to each other, on any machine and in
//! any later version. A repository pushed or deleted between two shards'
//! catalog reads (shards of a Job with parallelism below its completions
//! start hours apart) moves each cut by one repository at most, so the
//! damage is bounded: a repository at a cut may be swept by both shards
//! beside it (merged reports drop the duplicates) or by neither. Each shard
//! records where its run starts and where the next one starts in its view
//! (`Assignment::from`, `until`; in its summary), and `leakhound merge`
//! reports a gap between one shard's `until` and the next one's `from`,
//! naming the repository that no shard took, as an incomplete sweep.
//!
//! Equal counts are not equal bytes when repositories differ in size: a
//! byte-balanced split needs sizes before it, which `plan` makes once for
//! all shards.

/// The `index`-th of `count` shards, counted from 0 (as Kubernetes'
/// `JOB_COMPLETION_INDEX` is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not I/N (the I-th of N shards, from 0)"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{i}` is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        Shard::new(index, count)
    }

    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indexes count from 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The repositories of `universe` (paths such as `team/app`, without
    /// host, tag or digest; duplicates count once) that fall to this shard.
    pub fn assign<'a>(&self, universe: impl IntoIterator<Item = &'a str>) -> Assignment {
        let mut all: Vec<&str> = universe.into_iter().collect();
        all.sort_unstable();
        all.dedup();
        let catalog_digest = super::sha256_digest(all.join("\n").as_bytes());
        let catalog_size = all.len();
        all.sort_by_key(|r| order_key(r));
        // The i-th run is [i*M/N, (i+1)*M/N): lengths differ by one at most.
        let (m, n) = (all.len() as u64, u64::from(self.count));
        let cut = |i: u64| (i * m / n) as usize;
        let (start, end) = (cut(u64::from(self.index)), cut(u64::from(self.index) + 1));
        let at = |rank: usize| all.get(rank).map(|r| r.to_string());
        Assignment {
            repositories: all[start..end].iter().map(|r| r.to_string()).collect(),
            from: if self.index == 0 { None } else { at(start) },
            until: if self.index + 1 == self.count {
                None
            } else {
                at(end)
            },
            catalog_size,
            catalog_digest,
        }
    }
}

/// Where a repository falls in the order shards are cut from: FNV-1a of its
/// path, then the path.
pub fn order_key(repository: &str) -> (u64, &str) {
    (fnv1a(repository.as_bytes()), repository)
}

/// What one shard takes of the repositories every shard sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// This shard's repositories, sorted by path.
    pub repositories: std::collections::BTreeSet<String>,
    /// The first repository of this shard's run (in `order_key` order), as
    /// far as it knows; `None` for the first shard (the order's start) and
    /// when the catalog ran out before its run.
    pub from: Option<String>,
    /// The first repository of the next shard's run, as far as this shard
    /// knows; `None` for the last shard (the order's end) and when the
    /// catalog ran out. Shards that saw the same catalog have
    /// `until` of shard I equal to `from` of shard I+1.
    pub until: Option<String>,
    /// Distinct repositories the split was made over.
    pub catalog_size: usize,
    /// `sha256:` of the sorted repository paths joined by newlines: shards
    /// with the same digest made the same split.
    pub catalog_digest: String,
}

impl Assignment {
    /// True if `repository` (a path such as `team/app`) is this shard's.
    pub fn takes(&self, repository: &str) -> bool {
        self.repositories.contains(repository)
    }
}

/// The repository path of an image reference: `host[:port]/team/app:tag`
/// or `…@sha256:…` gives `team/app`. The first component is a host when it
/// has a dot or a colon or is `localhost`, as Docker reads references.
pub fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    // A tag is after the last colon that follows the last slash.
    let name = match (name.rfind(':'), name.rfind('/')) {
        (Some(c), Some(s)) if c > s => &name[..c],
        (Some(c), None) => &name[..c],
        _ => name,
    };
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => name,
    }
}

/// FNV-1a, 64 bit: small, stable and well spread over short names.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_repository_is_in_exactly_one_shard_and_shards_differ_by_one_at_most() {
        for n in [1usize, 7, 40, 50, 500] {
            let repos: Vec<String> = (0..n).map(|i| format!("team{}/app{i}", i % 7)).collect();
            for count in [1u32, 2, 3, 8, 13] {
                let shards: Vec<Assignment> = (0..count)
                    .map(|i| {
                        Shard::new(i, count)
                            .unwrap()
                            .assign(repos.iter().map(String::as_str))
                    })
                    .collect();
                for r in &repos {
                    let owners = shards.iter().filter(|a| a.takes(r)).count();
                    assert_eq!(owners, 1, "{r} in {owners} of {count}");
                }
                let sizes: Vec<usize> = shards.iter().map(|a| a.repositories.len()).collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{n} over {count}: {sizes:?}");
                assert_eq!(sizes.iter().sum::<usize>(), n);
                assert!(
                    shards
                        .iter()
                        .all(|a| a.catalog_digest == shards[0].catalog_digest)
                );
                // The runs are cut where the next one starts.
                assert_eq!(shards[0].from, None);
                assert_eq!(shards.last().unwrap().until, None);
                for w in shards.windows(2) {
                    assert_eq!(w[0].until, w[1].from, "{n} over {count}");
                }
            }
        }
    }

    #[test]
    fn a_catalog_changed_between_shards_moves_each_cut_by_one_repository_at_most() {
        let old: Vec<String> = (0..40).map(|i| format!("team{}/svc{i}", i % 4)).collect();
        for pushed in ["new/app", "team0/svc999", "a"] {
            let new: Vec<&str> = old.iter().map(String::as_str).chain([pushed]).collect();
            // Even shards read the catalog before the push, odd ones after.
            let shards: Vec<Assignment> = (0..8)
                .map(|i| {
                    let s = Shard::new(i, 8).unwrap();
                    if i % 2 == 0 {
                        s.assign(old.iter().map(String::as_str))
                    } else {
                        s.assign(new.iter().copied())
                    }
                })
                .collect();
            let missed: Vec<&String> = old
                .iter()
                .filter(|r| !shards.iter().any(|a| a.takes(r)))
                .collect();
            assert!(missed.len() < 8, "{pushed}: {missed:?}");
            // Each repository no shard took is the `until` of a shard whose
            // successor starts after it: what `merge` reports.
            let gaps: Vec<&String> = shards
                .windows(2)
                .filter(|w| match (&w[0].until, &w[1].from) {
                    (Some(u), Some(f)) => order_key(f) > order_key(u),
                    (Some(_), None) => true,
                    _ => false,
                })
                .map(|w| w[0].until.as_ref().unwrap())
                .collect();
            for m in &missed {
                assert!(gaps.contains(m), "{pushed}: {m} missed but no gap names it");
            }
        }
    }

    #[test]
    fn the_split_depends_on_the_set_of_repositories_not_their_order() {
        let repos: Vec<String> = (0..60).map(|i| format!("org{}/svc{i}", i % 5)).collect();
        let s = Shard::new(3, 8).unwrap();
        let a = s.assign(repos.iter().map(String::as_str));
        let mut shuffled: Vec<&str> = repos.iter().rev().map(String::as_str).collect();
        shuffled.extend(repos.iter().take(5).map(String::as_str));
        assert_eq!(s.assign(shuffled), a, "order and duplicates change nothing");
        // Another catalog is another split, and says so.
        let b = s.assign(repos.iter().skip(1).map(String::as_str));
        assert_ne!(b.catalog_digest, a.catalog_digest);
        assert_eq!(b.catalog_size, 59);
    }

    #[test]
    fn the_partition_is_a_fixed_function_of_the_name() {
        // FNV-1a test vectors: the partition must not change between
        // versions, or two shards of a rolling upgrade would disagree.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn parses_i_of_n_and_refuses_the_rest() {
        assert_eq!(Shard::parse("3/8"), Ok(Shard { index: 3, count: 8 }));
        for bad in ["8/8", "1", "a/2", "0/0", "-1/4"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repository_of_a_reference() {
        for (r, want) in [
            ("registry.example.com:5000/team/app:v1", "team/app"),
            ("127.0.0.1:5000/app@sha256:abcd", "app"),
            ("localhost/team/app", "team/app"),
            ("team/app:latest", "team/app"),
            ("app", "app"),
            ("ghcr.io/o/r/x:1.2", "o/r/x"),
        ] {
            assert_eq!(repository_of(r), want, "{r}");
        }
    }
}
