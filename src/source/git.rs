//! Git: enumerates the blobs of a repository's history with `gix`, each
//! unique blob once, attributed to the first commit (in topological order,
//! parents before children) that introduced it and its path there.
//!
//! Full history: commits are ordered topologically and each commit's tree is
//! walked, skipping every tree and blob already seen, so the cost is the
//! number of unique trees and blobs, not commits × files; the first commit
//! whose tree holds a blob is the one that introduced it (merge commits
//! included). Diff scopes (`--since-commit`, `--range`) instead compare each
//! new commit with its parents, so their cost follows the new commits.
//!
//! This module only enumerates; reading blobs for the engine is `read_blob`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gix::ObjectId;
use gix::bstr::ByteSlice;

use crate::blob::{Blob, CommitMeta, Origin};
use crate::notice::{Notice, NoticeKind};
use crate::source::gitpack;

/// What part of the history to scan.
#[derive(Clone, Debug, Default)]
pub struct GitOptions {
    /// Only this ref's history (default: every ref).
    pub branch: Option<String>,
    /// Only commits not reachable from this revision.
    pub since_commit: Option<String>,
    /// `A..B`: commits reachable from B and not from A.
    pub range: Option<String>,
    /// Also unreachable (dangling) blobs.
    pub all_objects: bool,
}

/// Why a repository cannot be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path}: not a Git repository: {message}")]
    NotARepository { path: String, message: String },
    #[error("unknown revision `{rev}`: {message}")]
    UnknownRevision { rev: String, message: String },
    #[error("cannot clone {url}: {message}")]
    Clone { url: String, message: String },
    #[error("{context}: {message}")]
    Repository { context: String, message: String },
}

fn repo_err(context: impl Into<String>) -> impl FnOnce(Box<dyn std::error::Error>) -> GitError {
    let context = context.into();
    move |e| GitError::Repository {
        context,
        message: e.to_string(),
    }
}

/// One blob to scan and where it came from.
#[derive(Clone, Debug)]
pub struct BlobTask {
    pub id: ObjectId,
    pub origin: Origin,
    /// In a diff scope, the blobs at the same path in the parent commits:
    /// secrets already there are not new and are not reported again.
    pub previous: Vec<ObjectId>,
    /// A version of the same file handed over before this one (a parent's,
    /// or in a full-history walk the last one found at this path, whose
    /// findings carry this path): only what changed since is looked for.
    pub baseline: Option<ObjectId>,
}

/// Everything a scan of the repository must look at.
#[derive(Debug, Default)]
pub struct Plan {
    pub blobs: Vec<BlobTask>,
    /// Commit and annotated tag messages.
    pub messages: Vec<Blob>,
    /// Objects that could not be read (named, with the commit), and
    /// history that is missing (shallow clones).
    pub problems: Vec<Notice>,
    pub commits: usize,
    /// The history whose trees the source walks (none for `--staged`).
    pub history: Option<History>,
}

/// Opens a local repository (work tree, bare or mirror).
pub fn open(path: &Path) -> Result<gix::Repository, GitError> {
    let mut repo = gix::open(path).map_err(|e| GitError::NotARepository {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    repo.object_cache_size_if_unset(64 << 20);
    Ok(repo)
}

/// True for arguments that name a remote repository rather than a path.
pub fn is_url(s: &str) -> bool {
    s.contains("://") || (s.contains('@') && s.contains(':') && !Path::new(s).exists())
}

/// Gives the connection a deadline for connecting and for each read:
/// `git://` gets our own TCP stream with socket timeouts in place of gix's
/// (which has none), http(s) a reqwest client whose connect and per-read
/// timeouts are `timeout`. ssh runs behind `source::ssh_relay`, which
/// watches the server's side of the pipe, with the `ssh` program's own
/// `ConnectTimeout` and `ServerAlive*` options for the connection.
fn set_deadlines(
    conn: &mut gix::remote::Connection<
        '_,
        '_,
        '_,
        Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>,
    >,
    timeout: Duration,
) -> gix::Result<()> {
    use gix::error::ErrorExt;
    use gix::protocol::transport::client::blocking_io::http;
    use gix::protocol::transport::client::git as daemon;
    let Some(url) = conn.remote().url(gix::remote::Direction::Fetch).cloned() else {
        return Ok(());
    };
    match url.scheme {
        gix::url::Scheme::Git => {
            let host = url.host().unwrap_or_default().to_string();
            let port = url.port;
            let stream = connect_tcp(&host, port.unwrap_or(9418), timeout)
                .map_err(|e| std::io::Error::new(e.kind(), format!("git://{host}: {e}")).raise())?;
            let write = stream.try_clone().map_err(ErrorExt::raise)?;
            let peer = format!("git://{host}:{}", port.unwrap_or(9418));
            *conn.transport_mut() = Box::new(daemon::blocking_io::Connection::new(
                Timed {
                    inner: stream,
                    peer: peer.clone(),
                    timeout,
                    bytes: 0,
                    waited: Duration::ZERO,
                    got: 0,
                },
                Timed {
                    inner: write,
                    peer,
                    timeout,
                    bytes: 0,
                    waited: Duration::ZERO,
                    got: 0,
                },
                gix::protocol::transport::Protocol::V2,
                url.path.clone(),
                Some((host, port)),
                daemon::ConnectMode::Daemon,
                false,
            ));
        }
        gix::url::Scheme::Http | gix::url::Scheme::Https => {
            let name = conn.remote().name().map(|n| n.as_bstr().to_owned());
            let mut options = conn
                .remote()
                .repo()
                .transport_options(
                    url.to_bstring().as_bstr(),
                    name.as_ref().map(|n| n.as_ref()),
                )?
                .and_then(|o| o.downcast::<http::Options>().ok())
                .map(|o| *o)
                .unwrap_or_default();
            options.connect_timeout = Some(timeout);
            let client = http::reqwest::Options {
                configure_client: Some(Box::new(move |b: reqwest::blocking::ClientBuilder| {
                    // The blocking client's `timeout` bounds each read of the
                    // body, not the whole transfer: an idle deadline.
                    Ok(b.connect_timeout(timeout).timeout(timeout))
                })),
                configure_request: None,
            };
            options.backend = Some(std::sync::Arc::new(std::sync::Mutex::new(client)));
            // gix's reqwest transport, its response bodies under the rate
            // floor: a per-read deadline never ends a server that trickles.
            *conn.transport_mut() = Box::new(http::connect_http(
                Floored {
                    inner: http::reqwest::Remote::default(),
                    timeout,
                },
                url.clone(),
                gix::protocol::transport::Protocol::V2,
                false,
            ));
            conn.set_transport_options(Box::new(options));
        }
        gix::url::Scheme::Ssh => {
            use gix::protocol::transport::client::blocking_io::ssh;
            let options = conn.remote().repo().ssh_connect_options()?;
            let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
            // The default `ssh` gets deadlines for the TCP connection and
            // the banner, and keep-alives that end a connection whose peer
            // stopped answering; a command of the user's own (GIT_SSH_COMMAND,
            // core.sshCommand) is kept as it is. Either runs behind this
            // binary's relay, which abandons a server that goes silent or
            // trickles after the handshake (source::ssh_relay).
            let (inner, kind) = match &options.command {
                Some(user) => {
                    let text = user.to_string_lossy().into_owned();
                    let first = text.split_whitespace().next().unwrap_or("ssh").to_string();
                    let kind = match ssh::ProgramKind::from(std::ffi::OsStr::new(&first)) {
                        ssh::ProgramKind::Simple => options.kind,
                        k => Some(k),
                    };
                    (text, kind)
                }
                None => (
                    format!(
                        "ssh -o ConnectTimeout={secs} -o ServerAliveInterval={secs} \
                         -o ServerAliveCountMax=1"
                    ),
                    Some(ssh::ProgramKind::Ssh),
                ),
            };
            let exe = std::env::current_exe().map_err(ErrorExt::raise)?;
            let command = format!(
                "{} {} {} {inner}",
                shell_quote(&exe.to_string_lossy()),
                super::ssh_relay::ARG,
                timeout.as_secs_f64()
            );
            let transport = ssh::connect(
                url,
                gix::protocol::transport::Protocol::V2,
                ssh::connect::Options {
                    command: Some(command.into()),
                    disallow_shell: false,
                    kind,
                },
                false,
            )
            .map_err(ErrorExt::raise)?;
            *conn.transport_mut() = Box::new(transport);
        }
        _ => {}
    }
    Ok(())
}

/// `s` as one word for `sh`: single-quoted, inner quotes escaped.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A socket with read/write timeouts whose timeout errors say who stalled,
/// for how long and how far into the transfer.
///
/// Reads also have a floor: a peer that trickles bytes (less than
/// `MIN_RATE` bytes/s over a `timeout` spent waiting in reads) is dropped as
/// a stalled one would be. Time the caller spends between reads (indexing
/// the pack) does not count.
struct Timed {
    inner: std::net::TcpStream,
    peer: String,
    timeout: Duration,
    bytes: u64,
    /// Waiting in reads, and bytes read, since the floor was last met.
    waited: Duration,
    got: u64,
}

/// The slowest a `git://` transfer may go, averaged over `--timeout`.
const MIN_RATE: f64 = 1024.0;

impl Timed {
    fn explain(&self, e: std::io::Error, what: &str) -> std::io::Error {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{}: nothing {what} for {} s after {} bytes (--timeout); abandoned",
                    self.peer,
                    self.timeout.as_secs_f64(),
                    self.bytes
                ),
            )
        } else {
            e
        }
    }
}

impl Timed {
    fn stalled(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "{}: transfer stalled: {} bytes in {} s of waiting, less than {MIN_RATE} \
                 bytes/s (--timeout); abandoned",
                self.peer,
                self.got,
                self.waited.as_secs_f64().round()
            ),
        )
    }
}

impl std::io::Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.timeout.saturating_sub(self.waited);
        if left.is_zero() {
            return Err(self.stalled());
        }
        self.inner.set_read_timeout(Some(left))?;
        let asked = std::time::Instant::now();
        let res = self.inner.read(buf);
        self.waited += asked.elapsed();
        match res {
            // The wait was cut short by the rate floor's budget, not by a
            // whole `timeout` of silence: the peer was slow, not silent.
            Err(e)
                if left < self.timeout
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                Err(self.stalled())
            }
            Ok(n) => {
                self.bytes += n as u64;
                self.got += n as u64;
                if self.got as f64 >= MIN_RATE * self.timeout.as_secs_f64() {
                    (self.waited, self.got) = (Duration::ZERO, 0);
                }
                Ok(n)
            }
            Err(e) => Err(self.explain(e, "received")),
        }
    }
}

impl std::io::Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.explain(e, "accepted")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An HTTP transport whose response bodies are read under the rate floor
/// (`FlooredBody`); headers are bounded by the client's own deadline.
struct Floored<H> {
    inner: H,
    timeout: Duration,
}

impl<H: gix::protocol::transport::client::blocking_io::http::Http> Floored<H> {
    fn body<B>(&self, url: &str, body: B) -> FlooredBody<B> {
        FlooredBody {
            inner: body,
            url: url.to_string(),
            timeout: self.timeout,
            waited: Duration::ZERO,
            got: 0,
        }
    }
}

impl<H: gix::protocol::transport::client::blocking_io::http::Http>
    gix::protocol::transport::client::blocking_io::http::Http for Floored<H>
{
    type Headers = H::Headers;
    type ResponseBody = FlooredBody<H::ResponseBody>;
    type PostBody = H::PostBody;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<
        gix::protocol::transport::client::blocking_io::http::GetResponse<
            Self::Headers,
            Self::ResponseBody,
        >,
    > {
        let r = self.inner.get(url, base_url, headers)?;
        Ok(
            gix::protocol::transport::client::blocking_io::http::GetResponse {
                headers: r.headers,
                body: self.body(url, r.body),
            },
        )
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        body: gix::protocol::transport::client::blocking_io::http::PostBodyDataKind,
    ) -> gix::Result<
        gix::protocol::transport::client::blocking_io::http::PostResponse<
            Self::Headers,
            Self::ResponseBody,
            Self::PostBody,
        >,
    > {
        let r = self.inner.post(url, base_url, headers, body)?;
        Ok(
            gix::protocol::transport::client::blocking_io::http::PostResponse {
                post_body: r.post_body,
                headers: r.headers,
                body: self.body(url, r.body),
            },
        )
    }

    fn configure(&mut self, config: &dyn std::any::Any) -> gix::Result<()> {
        self.inner.configure(config)
    }

    fn redirected_base_url(&self) -> Option<String> {
        self.inner.redirected_base_url()
    }
}

/// An HTTP response body that fails as `Timed` does when the server sends
/// less than `MIN_RATE` bytes/s over a `timeout` spent waiting for it (a
/// silent server is ended by the client's per-read deadline).
struct FlooredBody<B> {
    inner: B,
    url: String,
    timeout: Duration,
    waited: Duration,
    got: u64,
}

impl<B: std::io::BufRead> std::io::BufRead for FlooredBody<B> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.waited >= self.timeout {
            if (self.got as f64) < MIN_RATE * self.timeout.as_secs_f64() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{}: transfer stalled: {} bytes in {} s of waiting, less than \
                         {MIN_RATE} bytes/s (--timeout); abandoned",
                        self.url,
                        self.got,
                        self.waited.as_secs_f64().round()
                    ),
                ));
            }
            (self.waited, self.got) = (Duration::ZERO, 0);
        }
        let asked = std::time::Instant::now();
        let buf = self.inner.fill_buf()?;
        self.waited += asked.elapsed();
        Ok(buf)
    }

    fn consume(&mut self, amt: usize) {
        self.got += amt as u64;
        self.inner.consume(amt);
    }
}

impl<B: std::io::BufRead> std::io::Read for FlooredBody<B> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

/// A TCP connection with connect, read and write deadlines.
fn connect_tcp(host: &str, port: u16, timeout: Duration) -> std::io::Result<std::net::TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the host name resolves to no address")))
}

/// Clones `url` bare into `dir` (a temporary directory the caller removes),
/// every network wait bounded by `timeout`.
pub fn clone_bare(url: &str, dir: &Path, timeout: Duration) -> Result<gix::Repository, GitError> {
    // gix's top-level errors are terse ("Transport handshake failed"); the
    // cause (HTTP status, refused connection, TLS) is in the source chain.
    let fail = |e: &dyn std::error::Error| {
        let mut message = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            cause = c.source();
        }
        GitError::Clone {
            url: url.to_string(),
            message,
        }
    };
    let mut prepare = gix::prepare_clone_bare(url, dir)
        .map_err(|e| fail(&e))?
        .configure_connection(move |conn| set_deadlines(conn, timeout));
    let (mut repo, _) = prepare
        .fetch_only(
            gix::progress::Discard,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .map_err(|e| fail(&e))?;
    repo.object_cache_size_if_unset(64 << 20);
    Ok(repo)
}

fn resolve(repo: &gix::Repository, rev: &str) -> Result<ObjectId, GitError> {
    let id = repo
        .rev_parse_single(rev)
        .map_err(|e| GitError::UnknownRevision {
            rev: rev.to_string(),
            message: e.to_string(),
        })?;
    // Peel tags to the commit they name.
    let obj = id.object().map_err(|e| GitError::UnknownRevision {
        rev: rev.to_string(),
        message: e.to_string(),
    })?;
    let commit =
        obj.peel_to_kind(gix::object::Kind::Commit)
            .map_err(|e| GitError::UnknownRevision {
                rev: rev.to_string(),
                message: format!("does not name a commit: {e}"),
            })?;
    Ok(commit.id)
}

/// The commits to start from: every ref (branches, tags, remote-tracking
/// refs, stash, notes) or one branch; annotated tag messages on the way.
fn tips(
    repo: &gix::Repository,
    opts: &GitOptions,
    plan: &mut Plan,
) -> Result<Vec<ObjectId>, GitError> {
    if let Some(b) = &opts.branch {
        return Ok(vec![resolve(repo, b)?]);
    }
    let mut tips = Vec::new();
    let mut broken: HashSet<ObjectId> = HashSet::new();
    // A tip that cannot be read is history not scanned: named, never
    // passed over (a corrupt tip commit once gave "0 findings", exit 0).
    let mut tip = |id: ObjectId, name: &str, plan: &mut Plan| match repo.find_object(id) {
        Ok(obj) if obj.kind == gix::object::Kind::Commit => tips.push(id),
        // Refs to trees or blobs name no history to walk.
        Ok(_) => {}
        Err(e) => {
            if broken.insert(id) {
                plan.problems.push(Notice {
                    path: name.to_string(),
                    reason: format!(
                        "points at {id}, which cannot be read ({e}); its history was not scanned"
                    ),
                    kind: NoticeKind::Unreadable,
                });
            }
        }
    };
    // Refs that did not resolve: HEAD pointing at one is not named twice.
    let mut unresolved: HashSet<String> = HashSet::new();
    let platform = repo
        .references()
        .map_err(|e| repo_err("reading refs")(Box::new(e)))?;
    let refs = platform
        .all()
        .map_err(|e| repo_err("reading refs")(Box::new(e)))?;
    for r in refs {
        let mut r = match r {
            Ok(r) => r,
            Err(e) => {
                plan.problems.push(Notice {
                    path: repo.path().display().to_string(),
                    reason: format!(
                        "a ref cannot be read ({e}); what it points at was not scanned"
                    ),
                    kind: NoticeKind::Unreadable,
                });
                continue;
            }
        };
        let name = r.name().as_bstr().to_string();
        // An annotated tag's ref points at the tag object: read its message
        // before peeling to the commit.
        if let Some(direct) = r.target().try_id().map(|id| id.to_owned())
            && let Ok(obj) = repo.find_object(direct)
            && obj.kind == gix::object::Kind::Tag
            && let Ok(tag) = obj.try_into_tag()
            && let Ok(decoded) = tag.decode()
        {
            let message = decoded.message.to_vec();
            if let Ok(o) = repo.find_object(direct)
                && let Ok(c) = o.peel_to_kind(gix::object::Kind::Commit)
                && let Ok(meta) = commit_meta(repo, c.id)
            {
                plan.messages.push(Blob::new(
                    Origin::GitMessage {
                        commit: Arc::new(meta),
                        tag: Some(name.clone()),
                    },
                    message,
                ));
            }
        }
        match r.peel_to_id() {
            Ok(target) => tip(target.detach(), &name, plan),
            Err(e) => {
                plan.problems.push(Notice {
                    path: name.clone(),
                    reason: format!("cannot be resolved ({e}); its history was not scanned"),
                    kind: NoticeKind::Unreadable,
                });
                unresolved.insert(name);
            }
        }
    }
    // HEAD too (a detached HEAD is no ref under refs/); an unborn HEAD (a
    // new repository) has no history.
    match repo.head() {
        Ok(head) if head.is_unborn() => {}
        Ok(head)
            if head
                .referent_name()
                .is_some_and(|n| unresolved.contains(&n.as_bstr().to_string())) => {}
        Ok(head) => match head.into_peeled_id() {
            Ok(id) => tip(id.detach(), "HEAD", plan),
            Err(e) => plan.problems.push(Notice {
                path: "HEAD".into(),
                reason: format!("cannot be resolved ({e}); its history was not scanned"),
                kind: NoticeKind::Unreadable,
            }),
        },
        Err(e) => plan.problems.push(Notice {
            path: "HEAD".into(),
            reason: format!("cannot be read ({e}); its history was not scanned"),
            kind: NoticeKind::Unreadable,
        }),
    }
    tips.sort();
    tips.dedup();
    Ok(tips)
}

fn commit_meta(repo: &gix::Repository, id: ObjectId) -> Result<CommitMeta, String> {
    commit_and_tree(repo, id).map(|(meta, _)| meta)
}

/// A commit with what the topological sort needs.
#[derive(Debug)]
pub struct Node {
    id: ObjectId,
    parents: Vec<ObjectId>,
    time: i64,
}

/// Orders commits parents-first (Kahn's algorithm), oldest first among
/// those ready, ties by id: deterministic across runs.
fn topo_order(nodes: Vec<Node>) -> Vec<Node> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let index: HashMap<ObjectId, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let mut pending = vec![0usize; nodes.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for p in &n.parents {
            if let Some(&pi) = index.get(p) {
                pending[i] += 1;
                children[pi].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<(i64, ObjectId, usize)>> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| pending[*i] == 0)
        .map(|(i, n)| Reverse((n.time, n.id, i)))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse((_, _, i))) = ready.pop() {
        order.push(i);
        for &c in &children[i] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready.push(Reverse((nodes[c].time, nodes[c].id, c)));
            }
        }
    }
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Tree entry modes (the octal numbers Git writes), by kind.
fn is_tree(mode: u32) -> bool {
    mode & 0o170000 == 0o040000
}
fn is_blob_or_symlink(mode: u32) -> bool {
    matches!(mode & 0o170000, 0o100000 | 0o120000)
}

/// A tree entry in place: mode, name, id.
type RawEntry<'a> = (u32, &'a [u8], ObjectId);

/// The next entry of a raw tree object at `*pos`: mode, name, id. `None`
/// at the end; an error for a malformed entry.
fn tree_entry<'a>(
    data: &'a [u8],
    pos: &mut usize,
    hash_len: usize,
) -> Option<Result<RawEntry<'a>, String>> {
    let rest = data.get(*pos..).filter(|r| !r.is_empty())?;
    let bad = |what: &str| Some(Err(format!("malformed tree entry at byte {pos}: {what}")));
    let Some(space) = rest.iter().position(|&b| b == b' ') else {
        return bad("no mode");
    };
    let mut mode = 0u32;
    for &d in &rest[..space] {
        if !(b'0'..=b'7').contains(&d) || mode > 0o7777777 {
            return bad("mode is not an octal number");
        }
        mode = mode * 8 + u32::from(d - b'0');
    }
    let Some(nul) = rest[space + 1..].iter().position(|&b| b == 0) else {
        return bad("name not terminated");
    };
    let name = &rest[space + 1..space + 1 + nul];
    let id_at = space + 2 + nul;
    let Some(raw) = rest.get(id_at..id_at + hash_len) else {
        return bad("truncated object id");
    };
    let Ok(id) = ObjectId::try_from(raw) else {
        return bad("object id");
    };
    *pos += id_at + hash_len;
    Some(Ok((mode, name, id)))
}

/// A parent's entries of one subtree, by name (diff scopes only).
type ParentEntries = HashMap<Vec<u8>, (u32, ObjectId)>;

/// The run loop's side of a walk: where units and notices go, and the
/// order of blobs found so far.
struct Sink<'o> {
    out: &'o dyn super::Emit<BlobTag>,
    packs: &'o gitpack::Packs,
    /// Blobs found but not yet handed over, with their place in the pack.
    pending: Vec<((usize, u64), super::Unit<BlobTag>)>,
    found: usize,
}

impl Sink<'_> {
    fn blob(&mut self, task: BlobTask) {
        let at = self.packs.locate(&task.id).unwrap_or((usize::MAX, 0));
        let order = self.found;
        self.found += 1;
        self.pending.push((
            at,
            super::Unit {
                origin: task.origin,
                data: Vec::new(),
                tag: BlobTag {
                    id: task.id,
                    previous: task.previous,
                    baseline: task.baseline,
                    changed: None,
                    order,
                },
            },
        ));
        // Batches grow with the walk (1,024 blobs first, so scanning starts
        // at once, up to 16,384): the larger the batch, the more versions
        // of a file are read one delta apart.
        if self.pending.len() >= (self.found / 2).clamp(1024, 16_384) {
            self.flush();
        }
    }

    /// Hands over pending blobs in pack order: a delta's base comes before
    /// it in a pack, so each read finds its base in the workers' shared
    /// cache. Reports keep the walk's order (`BlobTag::order`).
    fn flush(&mut self) {
        self.pending.sort_by_key(|(at, _)| *at);
        for (_, unit) in self.pending.drain(..) {
            self.out.unit(unit);
        }
    }

    fn problem(&self, path: String, reason: String) {
        self.out.notice(Notice {
            path,
            reason,
            kind: NoticeKind::Unreadable,
        });
    }
}

/// Walks trees, recording each blob the first time it is seen.
struct Walker<'r, 's, 'o> {
    repo: &'r gix::Repository,
    reader: gitpack::Reader,
    seen_trees: gix::hashtable::HashSet<ObjectId>,
    seen_blobs: gix::hashtable::HashSet<ObjectId>,
    /// The last blob handed over at each path (a baseline for the next).
    last_at: HashMap<Vec<u8>, ObjectId>,
    sink: &'s mut Sink<'o>,
    /// Tree buffers to reuse.
    spare: Vec<Vec<u8>>,
    hash_len: usize,
}

impl Walker<'_, '_, '_> {
    /// A tree's raw bytes: through the chain-keeping pack reader, or gix
    /// for what is not packed.
    fn read_tree(&mut self, id: ObjectId, commit: &CommitMeta) -> Option<Vec<u8>> {
        let mut buf = self.spare.pop().unwrap_or_default();
        let res = match self.reader.read(&id, &mut buf) {
            Some(gix::object::Kind::Tree) => Ok(()),
            Some(kind) => Err(format!("expected a tree, found a {kind}")),
            None => self
                .repo
                .find_object(id)
                .map_err(|e| e.to_string())
                .and_then(|o| o.try_into_tree().map_err(|e| e.to_string()))
                .map(|t| {
                    buf.clear();
                    buf.extend_from_slice(&t.data);
                }),
        };
        match res {
            Ok(()) => Some(buf),
            Err(e) => {
                self.spare.push(buf);
                self.sink.problem(
                    format!("tree {id}"),
                    format!("cannot read (in commit {}): {e}", commit.id),
                );
                None
            }
        }
    }

    /// A tree's entries by name (a parent's side of a diff scope).
    fn parent_entries(&mut self, id: ObjectId, commit: &CommitMeta) -> Option<ParentEntries> {
        let data = self.read_tree(id, commit)?;
        let mut map = HashMap::new();
        let mut pos = 0;
        while let Some(Ok((mode, name, id))) = tree_entry(&data, &mut pos, self.hash_len) {
            map.insert(name.to_vec(), (mode, id));
        }
        self.spare.push(data);
        Some(map)
    }

    /// Reads a tree to walk and the same subtree of each parent, unless it
    /// is unchanged from a parent or was walked already.
    fn open(
        &mut self,
        tree: ObjectId,
        parents: &[ObjectId],
        path_len: usize,
        commit: &CommitMeta,
    ) -> Option<Frame> {
        if parents.contains(&tree) || !self.seen_trees.insert(tree) {
            return None;
        }
        let data = self.read_tree(tree, commit)?;
        let parent_entries = parents
            .iter()
            .filter_map(|p| self.parent_entries(*p, commit))
            .collect();
        Some(Frame {
            id: tree,
            data,
            pos: 0,
            parent_entries,
            path_len,
        })
    }

    /// Records blobs of `tree` (at `path`) not seen before and not present
    /// with the same id at the same place in any of `parents` (the same
    /// subtree of each parent commit; empty for a full-history walk).
    ///
    /// Depth-first with an explicit stack, not recursion: a tree nested
    /// 100,000 directories deep (a few KB that anyone can push) costs heap,
    /// not the thread's stack.
    fn walk(
        &mut self,
        tree: ObjectId,
        parents: &[ObjectId],
        path: &mut Vec<u8>,
        commit: &Arc<CommitMeta>,
    ) {
        let root_len = path.len();
        let Some(root) = self.open(tree, parents, root_len, commit) else {
            return;
        };
        let mut stack = vec![root];
        while let Some(top) = stack.last_mut() {
            let (mode, id) = match tree_entry(&top.data, &mut top.pos, self.hash_len) {
                None => {
                    let done = stack.pop().expect("a frame");
                    self.spare.push(done.data);
                    continue;
                }
                Some(Err(e)) => {
                    let done = stack.pop().expect("a frame");
                    self.sink.problem(
                        format!("tree {}", done.id),
                        format!("cannot read (in commit {}): {e}", commit.id),
                    );
                    self.spare.push(done.data);
                    continue;
                }
                Some(Ok((mode, name, id))) => {
                    path.truncate(top.path_len);
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(name);
                    (mode, id)
                }
            };
            let name = &path[top.path_len + usize::from(top.path_len > 0)..];
            if is_tree(mode) {
                let sub: Vec<ObjectId> = top
                    .parent_entries
                    .iter()
                    .filter_map(|pe| pe.get(name))
                    .filter(|(m, _)| is_tree(*m))
                    .map(|(_, id)| *id)
                    .collect();
                let len = path.len();
                if let Some(frame) = self.open(id, &sub, len, commit) {
                    stack.push(frame);
                }
            } else if is_blob_or_symlink(mode)
                && !self.seen_blobs.contains(&id)
                && !top
                    .parent_entries
                    .iter()
                    .any(|pe| pe.get(name).is_some_and(|(_, old)| *old == id))
            {
                self.seen_blobs.insert(id);
                let previous: Vec<ObjectId> = top
                    .parent_entries
                    .iter()
                    .filter_map(|pe| pe.get(name))
                    .filter(|(m, _)| is_blob_or_symlink(*m))
                    .map(|(_, id)| *id)
                    .collect();
                let last = self.last_at.insert(path.clone(), id);
                self.sink.blob(BlobTask {
                    id,
                    baseline: previous.first().copied().or(last),
                    previous,
                    origin: Origin::GitBlob {
                        blob: id.to_string(),
                        path: Some(path.to_str_lossy().into_owned()),
                        commit: Some(commit.clone()),
                    },
                });
            }
        }
        path.truncate(root_len);
    }
}

/// A tree being walked: its raw bytes and the position of the next entry,
/// the same subtree in each parent commit (name → mode and id), and the
/// length of its path.
struct Frame {
    id: ObjectId,
    data: Vec<u8>,
    pos: usize,
    parent_entries: Vec<ParentEntries>,
    path_len: usize,
}

/// The commits of a history walk, parents first, and how to walk them.
#[derive(Debug, Default)]
pub struct History {
    commits: Vec<Node>,
    /// Compare each commit with its parents (`--since-commit`, `--range`)
    /// instead of walking whole trees once.
    diff_mode: bool,
    all_objects: bool,
}

/// Enumerates what to scan in `repo` as `opts` asks: the commits, in
/// topological order, whose trees the source walks while the workers
/// scan (see `GitSource`).
pub fn plan(repo: &gix::Repository, opts: &GitOptions) -> Result<Plan, GitError> {
    let mut plan = Plan::default();
    let (tips, hidden) = match (&opts.range, &opts.since_commit) {
        (Some(range), _) => {
            let (a, b) = range
                .split_once("..")
                .ok_or_else(|| GitError::UnknownRevision {
                    rev: range.clone(),
                    message: "a range is written A..B".into(),
                })?;
            let b = if b.is_empty() { "HEAD" } else { b };
            (vec![resolve(repo, b)?], vec![resolve(repo, a)?])
        }
        (None, Some(since)) => (tips(repo, opts, &mut plan)?, vec![resolve(repo, since)?]),
        (None, None) => (tips(repo, opts, &mut plan)?, Vec::new()),
    };
    let diff_mode = !hidden.is_empty();
    if diff_mode {
        // Tag messages were gathered for the whole history; a diff scope
        // only looks at new commits.
        plan.messages.clear();
    }
    if repo.is_shallow().unwrap_or(false) && !diff_mode {
        plan.problems.push(Notice {
            path: repo.path().display().to_string(),
            reason: "shallow clone: history before the shallow boundary is missing and was not scanned; fetch it with `git fetch --unshallow`, or scan only the commits after it".into(),
            kind: NoticeKind::Unreadable,
        });
    }

    // gix reads parents and commit times from the commit-graph file when
    // the repository has one (`git commit-graph write`, or gc), and decodes
    // each commit otherwise.
    let walk = repo
        .rev_walk(tips)
        .with_hidden(hidden)
        .all()
        .map_err(|e| repo_err("walking history")(Box::new(e)))?;
    let mut nodes = Vec::new();
    for info in walk {
        match info {
            Ok(info) => {
                let id = info.id;
                let time = info
                    .commit_time
                    .or_else(|| {
                        repo.find_commit(id)
                            .ok()
                            .and_then(|c| c.time().ok())
                            .map(|t| t.seconds)
                    })
                    .unwrap_or(0);
                nodes.push(Node {
                    id,
                    parents: info.parent_ids.iter().copied().collect(),
                    time,
                });
            }
            Err(e) => plan.problems.push(Notice {
                path: repo.path().display().to_string(),
                reason: format!("history walk stopped: {e}"),
                kind: NoticeKind::Unreadable,
            }),
        }
    }
    plan.commits = nodes.len();
    plan.history = Some(History {
        commits: topo_order(nodes),
        diff_mode,
        all_objects: opts.all_objects,
    });
    Ok(plan)
}

/// The tree of commit `id` and what a finding reports about the commit.
fn commit_and_tree(repo: &gix::Repository, id: ObjectId) -> Result<(CommitMeta, ObjectId), String> {
    let commit = repo.find_commit(id).map_err(|e| e.to_string())?;
    let tree = commit
        .tree_id()
        .map_err(|e| format!("cannot read its tree: {e}"))?
        .detach();
    let decoded = commit.decode().map_err(|e| e.to_string())?;
    let author = decoded.author().map_err(|e| e.to_string())?;
    let date = author
        .time()
        .map(|t| t.format_or_unix(gix::date::time::format::ISO8601_STRICT))
        .unwrap_or_default();
    Ok((
        CommitMeta {
            id: id.to_string(),
            author: author.name.to_str_lossy().trim().to_string(),
            email: author.email.to_str_lossy().trim().to_string(),
            date,
            message: decoded.message.to_str_lossy().into_owned(),
        },
        tree,
    ))
}

/// Walks `history`'s commits in order, handing each blob to `sink` the
/// first time a commit's tree holds it, and keeping each commit's message.
/// Returns the blobs seen (for `--all-objects`).
fn walk_history(
    repo: &gix::Repository,
    history: History,
    packs: Arc<gitpack::Packs>,
    sink: &mut Sink<'_>,
    messages: &mut Vec<Blob>,
) -> gix::hashtable::HashSet<ObjectId> {
    let mut walker = Walker {
        repo,
        reader: gitpack::Reader::new(packs, TREE_CACHE),
        seen_trees: Default::default(),
        seen_blobs: Default::default(),
        last_at: HashMap::new(),
        sink,
        spare: Vec::new(),
        hash_len: repo.object_hash().len_in_bytes(),
    };
    let mut path = Vec::new();
    for node in history.commits {
        let (meta, tree) = match commit_and_tree(repo, node.id) {
            Ok((m, t)) => (Arc::new(m), t),
            Err(e) => {
                walker
                    .sink
                    .problem(format!("commit {}", node.id), format!("cannot read: {e}"));
                continue;
            }
        };
        messages.push(Blob::new(
            Origin::GitMessage {
                commit: meta.clone(),
                tag: None,
            },
            meta.message.as_bytes().to_vec(),
        ));
        let parent_trees: Vec<ObjectId> = if history.diff_mode {
            node.parents
                .iter()
                .filter_map(|p| {
                    repo.find_commit(*p)
                        .ok()?
                        .tree_id()
                        .ok()
                        .map(|t| t.detach())
                })
                .collect()
        } else {
            Vec::new()
        };
        walker.walk(tree, &parent_trees, &mut path, &meta);
    }
    walker.sink.flush();
    walker.seen_blobs
}

/// Bytes of decoded trees the walk keeps (delta chain links): enough for
/// every link of a few hundred chains of a large project's root tree.
const TREE_CACHE: usize = 64 << 20;

/// Bytes of decoded blobs the workers share (each blob's delta base,
/// read just before it in pack order).
const BLOB_CACHE: usize = 64 << 20;

/// Every blob in the object database that the walk did not reach.
fn unreachable_blobs(
    repo: &gix::Repository,
    seen: &gix::hashtable::HashSet<ObjectId>,
    sink: &mut Sink<'_>,
) {
    let iter = match repo.objects.iter() {
        Ok(iter) => iter,
        Err(e) => {
            sink.problem(
                repo.path().display().to_string(),
                format!("cannot list objects ({e}); unreachable blobs were not scanned"),
            );
            return;
        }
    };
    for id in iter {
        let Ok(id) = id else { continue };
        if seen.contains(&id) {
            continue;
        }
        if let Ok(h) = repo.find_header(id)
            && h.kind() == gix::object::Kind::Blob
        {
            sink.blob(BlobTask {
                id,
                previous: Vec::new(),
                baseline: None,
                origin: Origin::GitBlob {
                    blob: id.to_string(),
                    path: None,
                    commit: None,
                },
            });
        }
    }
    sink.flush();
}

/// Reads blob `id` for `origin`, refusing blobs over `max` bytes.
pub fn read_blob(
    repo: &gix::Repository,
    id: ObjectId,
    origin: &Origin,
    max: u64,
) -> Result<Blob, Notice> {
    let fail = |reason: String| Notice {
        path: match origin {
            Origin::GitBlob {
                path: Some(p),
                commit: Some(c),
                ..
            } => format!("{p} (blob {id}, commit {})", c.id),
            _ => format!("blob {id}"),
        },
        reason,
        kind: NoticeKind::Unreadable,
    };
    let header = repo
        .find_header(id)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if header.size() > max {
        return Err(Notice {
            kind: NoticeKind::TooLarge,
            ..fail(format!(
                "blob is {} bytes, larger than the maximum file size {max}",
                header.size()
            ))
        });
    }
    let obj = repo
        .find_object(id)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    Ok(Blob::new(origin.clone(), obj.detach().data))
}

/// Blobs smaller than this are scanned whole, with no baseline read: the
/// far-reaching rules' keywords are searched 16 KiB either side of a change,
/// so in a smaller blob a change scan saves little of the keyword pass and
/// costs a second read (on git/git, 32 KiB: 5% less time than reading the
/// baseline of every blob).
const CHANGES_FROM: usize = 32 << 10;

/// The span of `data` that differs from the blob `old`, when `old` was
/// scanned as text (not an archive, not in windows) so that its findings
/// stand for what the two share; `None` (scan all of `data`) otherwise.
fn changed_since(
    repo: &gix::Repository,
    old: ObjectId,
    data: &[u8],
    max: u64,
) -> Option<std::ops::Range<usize>> {
    let limit = max.min(crate::pipeline::big::STREAM_ABOVE);
    if data.len() < CHANGES_FROM
        || data.len() as u64 > limit
        || crate::decode::archive::kind(data).is_some()
    {
        return None;
    }
    let old = read_blob(repo, old, &Origin::Stdin, limit).ok()?.data;
    if crate::decode::archive::kind(&old).is_some() {
        return None;
    }
    Some(crate::engine::changed_span(&old, data))
}

/// A blob streamed by `git cat-file blob`: fails unless it ends with the
/// size the object database declares and `git` succeeds.
struct GitCat {
    child: std::process::Child,
    out: std::process::ChildStdout,
    id: ObjectId,
    size: u64,
    read: u64,
}

impl GitCat {
    fn spawn(git_dir: &Path, id: ObjectId, size: u64) -> Option<GitCat> {
        let mut child = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(git_dir)
            .args(["cat-file", "blob", &id.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        Some(GitCat {
            child,
            out,
            id,
            size,
            read: 0,
        })
    }
}

impl std::io::Read for GitCat {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.out.read(buf)?;
        self.read += n as u64;
        if n == 0 || self.read > self.size {
            let status = self.child.wait()?;
            if !status.success() || self.read != self.size {
                return Err(std::io::Error::other(format!(
                    "git cat-file blob {} gave {} of {} bytes ({status})",
                    self.id, self.read, self.size
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for GitCat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path → blob id of every file in HEAD's tree (empty on an unborn branch).
fn head_files(repo: &gix::Repository) -> Result<HashMap<Vec<u8>, ObjectId>, GitError> {
    let mut out = HashMap::new();
    let Ok(tree) = repo.head_tree_id() else {
        return Ok(out);
    };
    let mut stack = vec![(tree.detach(), Vec::new())];
    while let Some((id, prefix)) = stack.pop() {
        let tree = repo
            .find_object(id)
            .map_err(|e| repo_err(format!("reading tree {id}"))(Box::new(e)))?
            .try_into_tree()
            .map_err(|e| repo_err(format!("reading tree {id}"))(Box::new(e)))?;
        let decoded = tree
            .decode()
            .map_err(|e| repo_err(format!("decoding tree {id}"))(Box::new(e)))?;
        for e in &decoded.entries {
            let mut path: Vec<u8> = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(e.filename);
            if e.mode.is_tree() {
                stack.push((e.oid.to_owned(), path));
            } else if e.mode.is_blob_or_symlink() {
                out.insert(path, e.oid.to_owned());
            }
        }
    }
    Ok(out)
}

/// `--staged`: index entries whose blob differs from HEAD's (what a
/// pre-commit hook is about to commit).
pub fn staged(repo: &gix::Repository) -> Result<Plan, GitError> {
    let head = head_files(repo)?;
    let index = repo
        .open_index()
        .map_err(|e| repo_err("reading the index")(Box::new(e)))?;
    let mut plan = Plan::default();
    for entry in index.entries() {
        let path = entry.path(&index);
        if entry.mode.is_submodule() || head.get(path.as_bytes()) == Some(&entry.id) {
            continue;
        }
        let previous: Vec<ObjectId> = head.get(path.as_bytes()).copied().into_iter().collect();
        plan.blobs.push(BlobTask {
            id: entry.id,
            baseline: previous.first().copied(),
            previous,
            origin: Origin::GitBlob {
                blob: entry.id.to_string(),
                path: Some(path.to_str_lossy().into_owned()),
                commit: None,
            },
        });
    }
    Ok(plan)
}

/// `--uncommitted`: work-tree files (respecting .gitignore) whose content
/// differs from HEAD's, new files included. Returned as paths to scan.
pub fn uncommitted(repo: &gix::Repository) -> Result<Vec<std::path::PathBuf>, GitError> {
    let workdir = repo.workdir().ok_or_else(|| GitError::Repository {
        context: repo.path().display().to_string(),
        message: "a bare repository has no work tree, so no uncommitted changes".into(),
    })?;
    let head = head_files(repo)?;
    let mut out = Vec::new();
    let walker = ignore::WalkBuilder::new(workdir)
        .hidden(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.into_path();
        let Ok(rel) = path.strip_prefix(workdir) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let changed = match (head.get(rel.as_bytes()), std::fs::read(&path)) {
            (Some(id), Ok(data)) => {
                gix::objs::compute_hash(repo.object_hash(), gix::object::Kind::Blob, &data)
                    .map_or(true, |h| h != *id)
            }
            _ => true,
        };
        if changed {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// A Git plan as a source: blobs read by the workers (each with its own
/// repository handle), secrets a parent version of the file already held
/// dropped (diff scopes), findings kept for the commit that introduced
/// them first, then commit and tag messages.
pub struct GitSource {
    repo: gix::ThreadSafeRepository,
    blobs: std::sync::Mutex<Vec<BlobTask>>,
    history: std::sync::Mutex<Option<History>>,
    /// Tag messages from the plan, then each walked commit's message.
    messages: std::sync::Mutex<Vec<Blob>>,
    problems: std::sync::Mutex<Vec<Notice>>,
    max_file_size: u64,
    /// The workers' shared cache of decoded pack entries.
    cache: gitpack::Shared,
}

impl GitSource {
    pub fn new(repo: &gix::Repository, plan: Plan, max_file_size: u64) -> GitSource {
        GitSource {
            repo: repo.clone().into_sync(),
            blobs: std::sync::Mutex::new(plan.blobs),
            history: std::sync::Mutex::new(plan.history),
            messages: std::sync::Mutex::new(plan.messages),
            problems: std::sync::Mutex::new(plan.problems),
            max_file_size,
            cache: gitpack::Shared(Arc::new(std::sync::Mutex::new(gitpack::Cache::new(
                BLOB_CACHE,
            )))),
        }
    }
}

/// A blob to read, the versions its path had in the parents, and its place
/// in the walk (the order findings are kept in).
#[derive(Debug)]
pub struct BlobTag {
    id: ObjectId,
    previous: Vec<ObjectId>,
    baseline: Option<ObjectId>,
    /// What differs from the baseline, once the blob is loaded.
    changed: Option<std::ops::Range<usize>>,
    order: usize,
}

impl super::Source for GitSource {
    type Tag = BlobTag;
    type Worker = gix::Repository;

    fn worker(&self) -> gix::Repository {
        // Each blob is read once: no object cache; the pack cache is one
        // for all workers, which read neighbouring entries of the pack.
        let mut repo = self.repo.to_thread_local();
        repo.object_cache_size(0);
        let shared = self.cache.clone();
        repo.objects
            .set_pack_cache(move || Box::new(shared.clone()));
        repo
    }

    /// Walks the history while the workers scan: blobs are handed over as
    /// the walk finds them (in pack-ordered batches), so the scan starts
    /// with the first commits instead of after the last.
    fn units(&self, out: &dyn super::Emit<BlobTag>) {
        for p in std::mem::take(&mut *self.problems.lock().expect("git plan lock")) {
            out.notice(p);
        }
        // Commits are read once each and trees go through the walk's own
        // chain cache: gix's object cache would only hold memory.
        let mut repo = self.repo.to_thread_local();
        repo.object_cache_size(0);
        // One view of the packs: the sink orders blobs by it, the walk reads
        // trees through it.
        let packs = Arc::new(gitpack::Packs::open(
            repo.objects.store_ref().path(),
            repo.object_hash(),
        ));
        let mut sink = Sink {
            out,
            packs: &packs,
            pending: Vec::new(),
            found: 0,
        };
        for task in std::mem::take(&mut *self.blobs.lock().expect("git plan lock")) {
            sink.blob(task);
        }
        sink.flush();
        let Some(history) = self.history.lock().expect("git plan lock").take() else {
            return;
        };
        let all_objects = history.all_objects;
        let mut messages = Vec::new();
        let seen = walk_history(&repo, history, packs.clone(), &mut sink, &mut messages);
        self.messages
            .lock()
            .expect("git plan lock")
            .extend(messages);
        if all_objects {
            unreachable_blobs(&repo, &seen, &mut sink);
        }
    }

    fn load(
        &self,
        unit: &mut super::Unit<BlobTag>,
        repo: &mut gix::Repository,
    ) -> Result<(), Notice> {
        unit.data = read_blob(repo, unit.tag.id, &unit.origin, self.max_file_size)?.data;
        unit.tag.changed = unit
            .tag
            .baseline
            .and_then(|old| changed_since(repo, old, &unit.data, self.max_file_size));
        Ok(())
    }

    fn changed(&self, unit: &super::Unit<BlobTag>) -> Option<std::ops::Range<usize>> {
        unit.tag.changed.clone()
    }

    fn stream(
        &self,
        unit: &mut super::Unit<BlobTag>,
        repo: &mut gix::Repository,
    ) -> Option<Result<Box<dyn std::io::Read + Send>, Notice>> {
        // gix reads an object whole; `git cat-file` streams a large blob
        // (loose, or whole in a pack, as Git stores blobs over its
        // `core.bigFileThreshold`). Without `git` the blob is read whole.
        let size = repo.find_header(unit.tag.id).ok()?.size();
        if size <= crate::pipeline::big::STREAM_ABOVE || size > self.max_file_size {
            return None;
        }
        GitCat::spawn(repo.git_dir(), unit.tag.id, size)
            .map(|r| Ok(Box::new(r) as Box<dyn std::io::Read + Send>))
    }

    fn archives(&self, _: &super::Unit<BlobTag>) -> Option<crate::decode::archive::ArchiveLimits> {
        // Entries of a committed archive, each at `path!entry` with the
        // blob's commit (all of them, in diff scopes too: entries are not
        // compared with older versions).
        Some(crate::decode::archive::ArchiveLimits {
            max_entry: self.max_file_size,
            ..Default::default()
        })
    }

    fn review(
        &self,
        unit: &super::Unit<BlobTag>,
        findings: &mut Vec<crate::finding::Finding>,
        repo: &mut gix::Repository,
        scanner: &crate::engine::Scanner,
        scratch: &mut crate::engine::Scratch,
    ) {
        if unit.tag.previous.is_empty() {
            return;
        }
        // Only secrets this change added: drop those the same path already
        // held in a parent.
        let mut old: Vec<(crate::rules::RuleId, Vec<u8>)> = Vec::new();
        for prev in &unit.tag.previous {
            if let Ok(p) = read_blob(repo, *prev, &unit.origin, self.max_file_size) {
                for c in scanner.scan(&p.origin, &p.data, scratch).candidates {
                    old.push((c.rule, c.secret(&p.data).to_vec()));
                }
            }
        }
        let rules = scanner.rules();
        findings.retain(|f| {
            !old.iter()
                .any(|(r, s)| rules.rule(*r).spec.id == f.rule_id && *s == f.raw_secret)
        });
    }

    fn unit_name(&self, unit: &super::Unit<BlobTag>) -> String {
        unit.tag.id.to_string()
    }

    fn finish(
        &self,
        mut found: Vec<super::Found<BlobTag>>,
        _: &crate::engine::Scanner,
        scan: &mut dyn FnMut(&Origin, &[u8]) -> Vec<crate::finding::Finding>,
    ) -> Vec<crate::finding::Finding> {
        // Blobs are listed in topological order of the commits that
        // introduced them: when later versions of a file still hold the
        // same secret, keep only the first (the fingerprint is rule, secret
        // and path), as a person reviewing history wants the commit that
        // added it, once.
        found.sort_by_key(|f| f.tag.order);
        let mut seen = HashSet::new();
        let mut findings: Vec<crate::finding::Finding> = found
            .into_iter()
            .flat_map(|f| f.findings)
            .filter(|f| seen.insert(f.fingerprint.clone()))
            .collect();
        // Messages are decoded like blobs: a base64 or percent-encoded
        // token pasted into a commit message is as leaked as one in a file.
        for m in self.messages.lock().expect("git plan lock").iter() {
            findings.extend(scan(&m.origin, &m.data));
        }
        findings
    }
}
