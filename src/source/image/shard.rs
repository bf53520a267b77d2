//! Sharded registry sweeps: which repositories one of N processes (say the
//! pods of a Kubernetes Indexed Job) takes. The partition is by repository,
//! so an image's tags and their shared layers stay in one shard, and it is
//! a pure function of the repository path (FNV-1a, 64 bit, of `team/app`,
//! modulo N): every shard agrees without talking to the others, on any
//! machine and in any later version.

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

    /// True if `repository` (a path such as `team/app`, without host, tag
    /// or digest) belongs to this shard.
    pub fn takes(&self, repository: &str) -> bool {
        fnv1a(repository.as_bytes()) % u64::from(self.count) == u64::from(self.index)
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
    fn every_repository_is_in_exactly_one_shard() {
        let repos: Vec<String> = (0..500).map(|i| format!("team{}/app{i}", i % 7)).collect();
        for count in [1u32, 2, 3, 8, 13] {
            let mut sizes = vec![0usize; count as usize];
            for r in &repos {
                let owners: Vec<u32> = (0..count)
                    .filter(|&i| Shard::new(i, count).unwrap().takes(r))
                    .collect();
                assert_eq!(owners.len(), 1, "{r} in {owners:?} of {count}");
                sizes[owners[0] as usize] += 1;
            }
            let mean = repos.len() / count as usize;
            assert!(
                sizes.iter().all(|&s| s * 2 > mean),
                "badly spread over {count}: {sizes:?}"
            );
        }
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
