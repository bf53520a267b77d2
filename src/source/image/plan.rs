//! Shard plans: a byte-balanced split of a registry's repositories, made
//! once before the shards start and read by every one of them.
//!
//! Balancing by bytes needs every repository's size, which no shard has
//! before it starts; a count-balanced split (`shard::Shard::assign`) of
//! repositories whose sizes differ 32× leaves shards 30-50% off the mean.
//! A planning pass lists the tags of every repository and fetches their
//! manifests (no config, no layer): a repository's size is the sum of its
//! distinct layers' declared sizes over its tags. `partition` then deals
//! the repositories out largest first (longest processing time first),
//! each to the shard whose bytes grow least-loaded by it: a shard's bytes
//! count a layer its repositories share once, as a shard reads it once.
//! Ties go to the lowest shard index and equal sizes are taken by path,
//! so the same sizes give the same plan on any machine.
//!
//! Every shard reads the same plan file, so they agree without talking to
//! each other however the registry changes while they start. A repository
//! the plan lists goes to the shard the plan names (if the shard's catalog
//! still lists it: a deleted one is simply gone); a repository the plan
//! does not list (pushed after planning) goes to shard FNV-1a(path) mod N,
//! a function of its name alone, so exactly one shard takes it whatever
//! catalog each shard saw. A tag pushed to a planned repository is listed
//! by the repository's one shard. No image is read by two shards and none
//! that exists when its shard lists tags is missed. Each shard's summary
//! records the plan's digest (`Plan::digest`, SHA-256 of the file), and
//! `leakhound merge` reports shards made from different plans (or some with
//! none) as an incomplete sweep.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::shard::{Assignment, Shard};

/// The plan file format; another version is refused.
pub const PLAN_VERSION: u32 = 1;
/// Largest plan file read (a repository's entry is under 100 bytes: a
/// million repositories fit).
pub const MAX_PLAN: u64 = 256 << 20;

/// A repository as measured for planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measured {
    /// The path (`team/app`).
    pub name: String,
    /// Tags listed.
    pub tags: usize,
    /// Its distinct layers (digest, declared size) over all its tags.
    pub layers: BTreeMap<String, u64>,
}

impl Measured {
    /// Sum of the distinct layers' sizes.
    pub fn bytes(&self) -> u64 {
        self.layers.values().sum()
    }
}

/// One repository's place in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub name: String,
    /// Counted from 0, below the plan's `shards`.
    pub shard: u32,
    /// Its distinct layers' declared (stored, usually compressed) sizes.
    pub bytes: u64,
    pub tags: usize,
}

/// A shard plan as written to and read from its file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub plan_version: u32,
    /// Registry host (with port) the plan is for.
    pub registry: String,
    /// Repository prefix (`team`; empty for the whole registry).
    pub prefix: String,
    pub shards: u32,
    /// When planning ended (RFC 3339, UTC).
    pub created: String,
    /// Each shard's planned bytes: its repositories' distinct layers, a
    /// layer shared by several of them counted once.
    pub shard_bytes: Vec<u64>,
    /// Sorted by name.
    pub repositories: Vec<Planned>,
}

/// Deals `repos` out to `shards` shards (at least 1): largest first (by
/// bytes, then path), each to the shard whose bytes after taking it are
/// least, the lowest index on a tie; a shard's bytes count each distinct
/// layer once. Returns each repository's shard (in `repos`' order) and
/// each shard's bytes. No shard ends more than the largest repository's
/// bytes above the least loaded one.
pub fn partition(repos: &[Measured], shards: u32) -> (Vec<u32>, Vec<u64>) {
    let n = shards.max(1) as usize;
    let mut order: Vec<(u64, &str, usize)> = repos
        .iter()
        .enumerate()
        .map(|(i, r)| (r.bytes(), r.name.as_str(), i))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
    let mut load = vec![0u64; n];
    let mut held: Vec<HashSet<&str>> = vec![HashSet::new(); n];
    let mut owner = vec![0u32; repos.len()];
    for (_, _, i) in order {
        let r = &repos[i];
        let (best, grown) = (0..n)
            .map(|s| {
                let new: u64 = r
                    .layers
                    .iter()
                    .filter(|(d, _)| !held[s].contains(d.as_str()))
                    .map(|(_, b)| *b)
                    .sum();
                (s, load[s].saturating_add(new))
            })
            // The least, and of equals the first (lowest index).
            .fold(None, |acc: Option<(usize, u64)>, (s, l)| match acc {
                Some((_, best)) if best <= l => acc,
                _ => Some((s, l)),
            })
            .expect("at least one shard");
        load[best] = grown;
        held[best].extend(r.layers.keys().map(String::as_str));
        owner[i] = best as u32;
    }
    (owner, load)
}

impl Plan {
    /// The plan for `repos` over `shards` shards.
    pub fn make(registry: &str, prefix: &str, shards: u32, repos: &[Measured]) -> Plan {
        let (owner, shard_bytes) = partition(repos, shards);
        let mut repositories: Vec<Planned> = repos
            .iter()
            .zip(owner)
            .map(|(r, shard)| Planned {
                name: r.name.clone(),
                shard,
                bytes: r.bytes(),
                tags: r.tags,
            })
            .collect();
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        repositories.dedup_by(|a, b| a.name == b.name);
        Plan {
            plan_version: PLAN_VERSION,
            registry: registry.to_string(),
            prefix: prefix.to_string(),
            shards: shards.max(1),
            created: crate::report::summary::now(),
            shard_bytes,
            repositories,
        }
    }

    /// The file's text (pretty JSON, one repository per few lines).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a plan serializes");
        s.push('\n');
        s
    }

    /// A plan file's content, checked: its version, a shard count of at
    /// least 1, every repository's shard below it, no repository twice.
    pub fn parse(data: &[u8]) -> Result<Plan, String> {
        let v: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| format!("not a shard plan (JSON): {e}"))?;
        match v.get("plan_version").and_then(|v| v.as_u64()) {
            Some(n) if n == u64::from(PLAN_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "plan format version {n}; this leakhound reads version {PLAN_VERSION}"
                ));
            }
            None => return Err("not a shard plan (no plan_version)".into()),
        }
        let plan: Plan =
            serde_json::from_value(v).map_err(|e| format!("not a valid shard plan: {e}"))?;
        if plan.shards == 0 {
            return Err("the plan's shard count is 0".into());
        }
        let mut seen = HashSet::new();
        for r in &plan.repositories {
            if r.shard >= plan.shards {
                return Err(format!(
                    "repository `{}` is given shard {} of {}",
                    r.name, r.shard, plan.shards
                ));
            }
            if !seen.insert(r.name.as_str()) {
                return Err(format!("repository `{}` is listed twice", r.name));
            }
        }
        Ok(plan)
    }

    /// The plan's identity: `sha256:` of its file's bytes.
    pub fn digest(data: &[u8]) -> String {
        super::sha256_digest(data)
    }

    /// The shard a repository falls to: the plan's, else (a repository
    /// created after planning) FNV-1a of its path modulo the shard count.
    pub fn shard_of(&self, repository: &str) -> u32 {
        match self
            .repositories
            .binary_search_by(|r| r.name.as_str().cmp(repository))
        {
            Ok(i) => self.repositories[i].shard,
            Err(_) => unplanned_shard(repository, self.shards),
        }
    }

    /// True if the plan lists `repository`.
    pub fn lists(&self, repository: &str) -> bool {
        self.repositories
            .binary_search_by(|r| r.name.as_str().cmp(repository))
            .is_ok()
    }

    /// What `shard` takes of the repositories it sees (duplicates count
    /// once). `from` and `until` are `None`: a planned split has no cuts.
    pub fn assign<'a>(
        &self,
        shard: Shard,
        universe: impl IntoIterator<Item = &'a str>,
    ) -> Assignment {
        let all: BTreeSet<&str> = universe.into_iter().collect();
        let catalog_digest = super::sha256_digest(
            all.iter()
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        );
        Assignment {
            repositories: all
                .iter()
                .filter(|r| self.shard_of(r) == shard.index)
                .map(|r| r.to_string())
                .collect(),
            from: None,
            until: None,
            catalog_size: all.len(),
            catalog_digest,
        }
    }
}

/// The shard of a repository no plan lists: FNV-1a of its path modulo
/// `count`, a function of the name alone.
pub fn unplanned_shard(repository: &str, count: u32) -> u32 {
    (super::shard::order_key(repository).0 % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, layers: &[(&str, u64)]) -> Measured {
        Measured {
            name: name.into(),
            tags: layers.len(),
            layers: layers.iter().map(|(d, b)| (d.to_string(), *b)).collect(),
        }
    }

    /// Sizes spread 32× (log-uniform), some layers shared by many.
    fn registry(seed: u64, n: usize) -> Vec<Measured> {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|i| {
                let own = (1u64 << 20) as f64 * 32f64.powf((next() % 1000) as f64 / 1000.0);
                let base = next() % 3;
                let tags = 1 + (next() % 8) as usize;
                let mut layers: Vec<(String, u64)> = vec![(format!("base{base}"), 8 << 20)];
                for t in 0..tags {
                    layers.push((format!("r{i}t{t}"), (own * (0.7 + 0.1 * t as f64)) as u64));
                }
                Measured {
                    name: format!("org{}/svc{i}", i % 7),
                    tags,
                    layers: layers.into_iter().collect(),
                }
            })
            .collect()
    }

    /// Each shard's bytes as a shard reads them (shared layers once).
    fn real_loads(repos: &[Measured], owner: &[u32], n: u32) -> Vec<u64> {
        let mut layers: Vec<BTreeMap<&str, u64>> = vec![BTreeMap::new(); n as usize];
        for (r, &s) in repos.iter().zip(owner) {
            for (d, b) in &r.layers {
                layers[s as usize].insert(d, *b);
            }
        }
        layers.iter().map(|l| l.values().sum()).collect()
    }

    #[test]
    fn the_partition_is_deterministic_and_independent_of_input_order() {
        let repos = registry(0x9e37_79b9, 50);
        let (a, la) = partition(&repos, 8);
        assert_eq!(partition(&repos, 8), (a.clone(), la.clone()));
        let mut reversed = repos.clone();
        reversed.reverse();
        let (b, lb) = partition(&reversed, 8);
        let b: Vec<u32> = b.into_iter().rev().collect();
        assert_eq!((a, la), (b, lb), "input order changed the plan");
    }

    #[test]
    fn no_shard_exceeds_the_least_loaded_by_more_than_the_largest_repository() {
        for (seed, n, shards) in [
            (1, 50, 8),
            (7, 200, 8),
            (3, 13, 4),
            (11, 500, 32),
            (5, 9, 8),
        ] {
            let repos = registry(seed, n);
            let (owner, loads) = partition(&repos, shards);
            assert_eq!(
                loads,
                real_loads(&repos, &owner, shards),
                "loads as a shard reads"
            );
            let largest = repos.iter().map(Measured::bytes).max().unwrap();
            let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
            assert!(max - min <= largest, "{seed}/{n}/{shards}: {loads:?}");
            assert!(owner.iter().all(|&s| s < shards));
        }
        // 50 repositories 32× apart over 8 shards: within 25% of the mean
        // (the count-balanced split was 29% off on such a registry).
        let repos = registry(0xbe9c_45ee, 50);
        let (_, loads) = partition(&repos, 8);
        let mean = loads.iter().sum::<u64>() as f64 / 8.0;
        let worst = loads
            .iter()
            .map(|&l| (l as f64 - mean).abs() / mean)
            .fold(0.0, f64::max);
        assert!(worst < 0.10, "{loads:?}: {worst}");
    }

    #[test]
    fn largest_first_with_ties_to_the_lowest_shard() {
        let repos = vec![
            repo("b", &[("l1", 10)]),
            repo("a", &[("l2", 10)]),
            repo("c", &[("l3", 30)]),
            repo("d", &[("l4", 5)]),
        ];
        // c (30) to 0; a (10, before b by path) to 1; b to 1 (20 < 30+10);
        // d to 1 (25 < 35).
        let (owner, loads) = partition(&repos, 2);
        assert_eq!(owner, [1, 1, 0, 1]);
        assert_eq!(loads, [30, 25]);
        // A layer a shard holds already costs nothing there.
        let shared = vec![
            repo("x", &[("base", 100), ("x", 1)]),
            repo("y", &[("base", 100), ("y", 2)]),
        ];
        let (owner, loads) = partition(&shared, 2);
        assert_eq!(
            owner,
            [1, 0],
            "y (102) first to 0, then x to the empty shard"
        );
        assert_eq!(loads, [102, 101]);
        let (owner, _) = partition(&[repo("only", &[])], 3);
        assert_eq!(owner, [0]);
    }

    #[test]
    fn a_plan_round_trips_and_assigns_unplanned_repositories_by_name() {
        let repos = registry(42, 30);
        let plan = Plan::make("reg.example:5000", "org1", 4, &repos);
        let text = plan.to_json();
        let back = Plan::parse(text.as_bytes()).unwrap();
        assert_eq!(back, plan);
        assert_eq!(Plan::digest(text.as_bytes()), Plan::digest(text.as_bytes()));
        let mut universe: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
        universe.extend(["new/one", "new/two", "zzz"]);
        let shards: Vec<Assignment> = (0..4)
            .map(|i| back.assign(Shard::new(i, 4).unwrap(), universe.iter().copied()))
            .collect();
        for r in &universe {
            assert_eq!(shards.iter().filter(|a| a.takes(r)).count(), 1, "{r}");
        }
        for p in &back.repositories {
            assert!(shards[p.shard as usize].takes(&p.name));
        }
        // An unplanned repository's shard does not depend on what else the
        // shard saw.
        let alone = back.assign(
            Shard::new(unplanned_shard("new/one", 4), 4).unwrap(),
            ["new/one"],
        );
        assert!(alone.takes("new/one"));
        assert!(!back.lists("new/one") && back.lists(&repos[0].name));
    }

    #[test]
    fn bad_plans_are_refused() {
        let plan = Plan::make("h", "", 2, &[repo("a", &[("l", 1)])]);
        let mut v: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        for (edit, want) in [
            (serde_json::json!({"plan_version": 2}), "version 2"),
            (serde_json::json!({"shards": 0}), "shard count is 0"),
            (serde_json::json!({"shards": 1}), "given shard"),
        ] {
            let mut bad = v.clone();
            for (k, x) in edit.as_object().unwrap() {
                bad[k] = x.clone();
            }
            let mut bad_plan = bad.clone();
            if want == "given shard" {
                bad_plan["repositories"][0]["shard"] = 1.into();
            }
            let e = Plan::parse(bad_plan.to_string().as_bytes()).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        v["repositories"] = serde_json::json!([
            {"name": "a", "shard": 0, "bytes": 1, "tags": 1},
            {"name": "a", "shard": 1, "bytes": 1, "tags": 1}
        ]);
        assert!(
            Plan::parse(v.to_string().as_bytes())
                .unwrap_err()
                .contains("twice")
        );
        for junk in [&b"[]"[..], b"{}", b"not json", b"{\"plan_version\": 1}"] {
            assert!(Plan::parse(junk).is_err());
        }
    }
}
