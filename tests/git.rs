//! `leakhound git` on real repositories built with the git CLI at test time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[path = "support/image.rs"]
mod fixture;
#[path = "support/registry.rs"]
mod server;

const GH: &str = "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";
const GH2: &str = "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";
const SLACK: &str = "xoxb-7255571726437-3957903447132-1rZLZ8a7syCYdzvColiggH3w";
const NPM: &str = "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";

struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    n: u32,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        std::fs::create_dir(&path).unwrap();
        let r = Repo {
            _dir: dir,
            path,
            n: 0,
        };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }
    fn git(&self, args: &[&str]) -> String {
        git_in(&self.path, args)
    }
    fn write(&self, rel: &str, content: &str) {
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    /// Commits everything with a distinct, increasing date; returns the id.
    fn commit(&mut self, msg: &str) -> String {
        self.n += 1;
        self.git(&["add", "-A"]);
        let date = format!("2026-01-01T00:{:02}:00+00:00", self.n);
        git_env(
            &self.path,
            &["commit", "-q", "--allow-empty", "-m", msg],
            &date,
        );
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }
    fn scan(&self, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
        scan_at(&self.path, args)
    }
}

fn git_env(dir: &Path, args: &[&str], date: &str) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ada Tester")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Ada Tester")
        .env("GIT_COMMITTER_EMAIL", "ada@example.org")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, "2026-01-01T00:00:00+00:00")
}

fn scan_at(target: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--format", "json", "git"])
        .args(args)
        .arg(target)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let findings = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), findings, stderr)
}

fn summary(findings: &[Value]) -> Vec<(String, String, String)> {
    findings
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap_or("<none>").to_string(),
                f["commit"]["id"].as_str().unwrap_or("<none>").to_string(),
            )
        })
        .collect()
}

#[test]
fn secret_added_then_deleted_is_reported_once_with_its_introducing_commit() {
    let mut r = Repo::new();
    r.write("README.md", "hello\n");
    r.commit("init");
    r.write("config/.env", &format!("A=1\nGITHUB_TOKEN={GH}\n"));
    let added = r.commit("add config");
    std::fs::remove_file(r.path.join("config/.env")).unwrap();
    r.commit("remove config");
    r.write("README.md", "hello again\n");
    r.commit("docs");
    let (code, f, err) = r.scan(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        summary(&f),
        vec![(
            "github-classic-pat".into(),
            "config/.env".into(),
            added.clone()
        )]
    );
    assert_eq!(f[0]["line"], 2);
    assert_eq!(f[0]["commit"]["author"], "Ada Tester");
    assert_eq!(f[0]["commit"]["email"], "ada@example.org");
    assert_eq!(f[0]["commit"]["date"], "2026-01-01T00:02:00+00:00");
    assert_eq!(f[0]["commit"]["message"], "add config\n");
}

#[test]
fn renamed_file_is_reported_once_at_its_first_path() {
    let mut r = Repo::new();
    r.write("a/secret.txt", &format!("token {GH}\n"));
    let first = r.commit("add");
    std::fs::create_dir(r.path.join("b")).unwrap();
    r.git(&["mv", "a/secret.txt", "b/moved.txt"]);
    r.commit("rename");
    let (_, f, _) = r.scan(&[]);
    assert_eq!(
        summary(&f),
        vec![("github-classic-pat".into(), "a/secret.txt".into(), first)]
    );
}

#[test]
fn secret_only_in_a_merge_commit_is_attributed_to_the_merge() {
    let mut r = Repo::new();
    r.write("app.cfg", "mode=dev\n");
    r.commit("init");
    r.git(&["checkout", "-q", "-b", "feature"]);
    r.write("app.cfg", "mode=feature\n");
    r.commit("feature change");
    r.git(&["checkout", "-q", "main"]);
    r.write("app.cfg", "mode=main\n");
    r.commit("main change");
    // Conflicting merge resolved by hand with a secret no parent has.
    let out = Command::new("git")
        .current_dir(&r.path)
        .args(["merge", "-q", "feature"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the merge conflicts");
    r.write("app.cfg", &format!("mode=merged\nslack={SLACK}\n"));
    let merge = r.commit("merge feature");
    let (_, f, _) = r.scan(&[]);
    assert_eq!(
        summary(&f),
        vec![("slack-bot-token".into(), "app.cfg".into(), merge)]
    );
}

#[test]
fn unmerged_branch_stash_commit_message_and_tag_message_are_scanned() {
    let mut r = Repo::new();
    r.write("a.txt", "a\n");
    r.commit("init");
    r.git(&["checkout", "-q", "-b", "wip"]);
    r.write("wip.txt", &format!("{GH2}\n"));
    let wip = r.commit("wip");
    r.git(&["checkout", "-q", "main"]);
    let msg = r.commit(&format!("deploy with {SLACK}"));
    r.write("a.txt", &format!("stashed {NPM}\n"));
    r.git(&["stash", "-q"]);
    git_env(
        &r.path,
        &["tag", "-a", "v1", "-m", &format!("release token {GH}")],
        "2026-01-02T00:00:00+00:00",
    );
    let (code, f, err) = r.scan(&[]);
    assert_eq!(code, Some(1), "{err}");
    let s = summary(&f);
    assert!(
        s.contains(&("github-classic-pat".into(), "wip.txt".into(), wip)),
        "{s:?}"
    );
    assert!(
        s.contains(&("slack-bot-token".into(), "<none>".into(), msg.clone())),
        "{s:?}"
    );
    assert!(
        s.iter()
            .any(|(rule, path, _)| rule == "npm-access-token" && path == "a.txt"),
        "stash: {s:?}"
    );
    assert!(
        s.contains(&("github-classic-pat".into(), "<none>".into(), msg)),
        "tag message: {s:?}"
    );
    // The message's secret is masked in the commit object too.
    assert!(!serde_json::to_string(&f).unwrap().contains(SLACK));
    // --branch main: the unmerged branch and stash are out of scope.
    let (_, f, _) = r.scan(&["--branch", "main"]);
    let s = summary(&f);
    assert!(
        s.iter().all(|(_, p, _)| p != "wip.txt" && p != "a.txt"),
        "{s:?}"
    );
}

#[test]
fn since_commit_and_range_scan_only_new_commits() {
    let mut r = Repo::new();
    r.write("old.env", &format!("T={GH}\n"));
    let base = r.commit("old secret");
    r.write("new.env", &format!("S={SLACK}\n"));
    let new = r.commit("new secret");
    r.write("old.env", &format!("T={GH}\nX=1\n"));
    r.commit("touch old file without a new secret");
    let (code, f, _) = r.scan(&["--since-commit", &base]);
    assert_eq!(code, Some(1));
    assert_eq!(
        summary(&f),
        vec![("slack-bot-token".into(), "new.env".into(), new.clone())]
    );
    let (_, f, _) = r.scan(&["--range", &format!("{base}..{new}")]);
    assert_eq!(
        summary(&f),
        vec![("slack-bot-token".into(), "new.env".into(), new)]
    );
    let (code, f, _) = r.scan(&["--since-commit", "HEAD"]);
    assert_eq!((code, f.len()), (Some(0), 0));
}

#[test]
fn staged_and_uncommitted_scopes() {
    let mut r = Repo::new();
    r.write("a.txt", "clean\n");
    r.commit("init");
    let (code, f, _) = r.scan(&["--staged"]);
    assert_eq!((code, f.len()), (Some(0), 0));
    r.write("b.env", &format!("K={NPM}\n"));
    r.git(&["add", "b.env"]);
    r.write("c.env", &format!("S={SLACK}\n"));
    let (code, f, _) = r.scan(&["--staged"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        summary(&f),
        vec![("npm-access-token".into(), "b.env".into(), "<none>".into())]
    );
    let (_, f, _) = r.scan(&["--uncommitted"]);
    let rules: Vec<String> = summary(&f).into_iter().map(|s| s.0).collect();
    assert_eq!(rules, vec!["npm-access-token", "slack-bot-token"]);
}

#[test]
fn dangling_blobs_need_all_objects() {
    let mut r = Repo::new();
    r.write("a.txt", "a\n");
    r.commit("init");
    r.write("leak.env", &format!("T={GH}\n"));
    r.commit("oops");
    r.git(&["reset", "-q", "--hard", "HEAD~1"]);
    r.git(&["reflog", "expire", "--expire=now", "--all"]);
    let (code, f, _) = r.scan(&[]);
    assert_eq!((code, f.len()), (Some(0), 0));
    let (code, f, _) = r.scan(&["--all-objects"]);
    assert_eq!(code, Some(1));
    assert!(
        f.iter()
            .any(|f| f["rule_id"] == "github-classic-pat" && f["path"].is_null()),
        "{f:?}"
    );
}

#[test]
fn bad_input_gives_clear_errors_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = scan_raw(dir.path(), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a Git repository"), "{err}");

    let mut r = Repo::new();
    r.write("a.txt", &format!("{GH}\n"));
    r.commit("init");
    let (code, _, err) = scan_raw(&r.path, &["--since-commit", "no-such-rev"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no-such-rev"), "{err}");

    // A missing object: the blob of b.txt is deleted from the loose store.
    r.write("b.txt", &format!("{SLACK}\n"));
    r.commit("second");
    let blob = r.git(&["rev-parse", "HEAD:b.txt"]).trim().to_string();
    std::fs::remove_file(
        r.path
            .join(".git/objects")
            .join(&blob[..2])
            .join(&blob[2..]),
    )
    .unwrap();
    let (code, f, err) = r.scan(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&blob) && err.contains("b.txt"), "{err}");
    assert!(
        f.iter().any(|f| f["path"] == "a.txt"),
        "the rest is still scanned"
    );
}

#[test]
fn shallow_clone_says_history_is_missing() {
    let mut r = Repo::new();
    r.write("a.txt", "1\n");
    r.commit("one");
    r.write("a.txt", "2\n");
    r.commit("two");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path.display());
    git_in(
        dir.path(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    );
    let (code, _, err) = scan_at(&dir.path().join("shallow"), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("shallow"), "{err}");
}

fn scan_raw(target: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["git"])
        .args(args)
        .arg(target)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn remote_repository_is_cloned_from_a_git_daemon() {
    let mut r = Repo::new();
    r.write("deploy.sh", &format!("export TOKEN={GH}\n"));
    let id = r.commit("deploy script");
    let base = r._dir.path().to_path_buf();
    let port = free_port();
    let _daemon = serve(
        Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                "--timeout=30",
                "--init-timeout=30",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(&base),
        port,
        "git daemon",
    );
    assert_clone_finds(&format!("git://127.0.0.1:{port}/repo"), id);
}

/// Kills a server's whole process group (servers fork a child per
/// connection), so nothing outlives the test, even when it panics.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        self.0.wait().ok();
    }
}

/// Starts a server in its own process group (killed with it on drop) and
/// waits until it listens on `port`.
fn serve(cmd: &mut Command, port: u16, what: &str) -> Kill {
    use std::os::unix::process::CommandExt;
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let server = Kill(child);
    wait_for_port(port, what);
    server
}

/// `leakhound git URL` reports exactly the test token of `deploy.sh`,
/// introduced by commit `id`.
fn assert_clone_finds(url: &str, id: String) {
    assert_clone_finds_with(url, id, &[]);
}

fn assert_clone_finds_with(url: &str, id: String, env: &[(&str, &str)]) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--format", "json", "git", url])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let f: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        summary(&f),
        vec![("github-classic-pat".into(), "deploy.sh".into(), id)]
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn remote_repository_is_cloned_over_smart_http() {
    use std::os::unix::fs::PermissionsExt;
    let mut r = Repo::new();
    r.write("deploy.sh", &format!("export TOKEN={GH}\n"));
    let id = r.commit("deploy script");
    // git's own smart-HTTP server (git http-backend) as a CGI behind
    // Python's http.server, both real, on a random port.
    let web = tempfile::tempdir().unwrap();
    let cgi = web.path().join("cgi-bin");
    std::fs::create_dir(&cgi).unwrap();
    let script = cgi.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nGIT_PROJECT_ROOT='{}' GIT_HTTP_EXPORT_ALL=1 exec git http-backend\n",
            r._dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let _server = serve(
        Command::new("python3")
            // CGI scripts run as the server's own user (http.server would
            // switch to `nobody` when run as root, which cannot read the
            // test's private temp dir).
            .arg("-c")
            .arg(
                "import http.server as h, os, sys\n\
                 os.setuid = lambda uid: None\n\
                 h.test(HandlerClass=h.CGIHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')",
            )
            .arg(port.to_string())
            .current_dir(web.path())
            ,
        port,
        "http.server",
    );
    assert_clone_finds(&format!("http://127.0.0.1:{port}/cgi-bin/git/repo"), id);
}

#[test]
fn secret_in_a_committed_kubernetes_secret_is_decoded_with_its_commit() {
    let mut r = Repo::new();
    r.write("README.md", "deploy notes\n");
    r.commit("init");
    let encoded = b64(GH);
    r.write(
        "k8s/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ci\n  namespace: build\n\
             type: Opaque\ndata:\n  github-token: {encoded}\n"
        ),
    );
    let id = r.commit("add ci secret");
    let (code, findings, stderr) = r.scan(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let f = findings
        .iter()
        .find(|f| f["rule_id"] == "github-classic-pat")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f["path"], "k8s/secret.yaml");
    assert_eq!(f["line"], 8);
    assert_eq!(f["commit"]["id"], id.as_str());
    assert_eq!(f["decoded"], serde_json::json!(["base64"]));
    assert_eq!(f["kubernetes"]["key"], "github-token");
    assert_eq!(f["kubernetes"]["namespace"], "build");
    assert!(
        findings
            .iter()
            .any(|f| f["rule_id"] == "kubernetes-secret-manifest")
    );
}

#[test]
fn base64_token_in_a_commit_message_is_decoded_and_reported() {
    let mut r = Repo::new();
    r.write("a.txt", "a\n");
    let id = r.commit(&format!("rotate: old value was {}", b64(GH)));
    let (code, findings, stderr) = r.scan(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let f = findings
        .iter()
        .find(|f| f["rule_id"] == "github-classic-pat")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f["commit"]["id"], id.as_str());
    assert!(f["path"].is_null(), "{f:#?}");
    assert_eq!(f["decoded"], serde_json::json!(["base64"]));
    // Neither the token nor its encoding is quoted anywhere.
    let json = serde_json::to_string(&findings).unwrap();
    assert!(!json.contains(GH) && !json.contains(&b64(GH)), "{json}");
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

#[test]
fn committed_archive_entries_are_scanned_with_the_commit() {
    use std::io::Write;
    let mut r = Repo::new();
    let env = format!("REGION=eu-west-1\nSLACK_TOKEN={SLACK}\n");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(env.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "app/.env", env.as_bytes()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    std::fs::create_dir_all(r.path.join("deploy")).unwrap();
    std::fs::write(r.path.join("deploy/bundle.tgz"), gz.finish().unwrap()).unwrap();
    let id = r.commit("add bundle");
    let (code, findings, stderr) = r.scan(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let f = findings
        .iter()
        .find(|f| f["rule_id"] == "slack-bot-token")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f["path"], "deploy/bundle.tgz!app/.env");
    assert_eq!(f["line"], 2);
    assert_eq!(f["commit"]["id"], id.as_str());
}

/// git's smart-HTTP server (`git http-backend` as a CGI behind Python's
/// http.server) on a random port, over TLS with `ssl` when `tls` names a
/// directory holding `server.pem` and `server.key`.
fn http_backend(root: &Path, web: &Path, tls: Option<&Path>) -> (Kill, u16) {
    use std::os::unix::fs::PermissionsExt;
    let cgi = web.join("cgi-bin");
    std::fs::create_dir(&cgi).unwrap();
    let script = cgi.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nGIT_PROJECT_ROOT='{}' GIT_HTTP_EXPORT_ALL=1 exec git http-backend\n",
            root.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let certs = tls.map(|d| d.display().to_string()).unwrap_or_default();
    // CGI through pipes, not a forked child writing to the socket (which
    // would bypass TLS); as the server's own user (not `nobody`); a TLS
    // response (HTTP/1.0, no length) ends with close_notify, as rustls
    // wants, not a bare TCP close.
    let server = serve(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import http.server as h, os, ssl, sys\n\
                 os.setuid = lambda uid: None\n\
                 h.CGIHTTPRequestHandler.have_fork = False\n\
                 class S(h.ThreadingHTTPServer):\n\
                 \x20   def shutdown_request(self, r):\n\
                 \x20       try:\n\
                 \x20           r.settimeout(5); r.unwrap()\n\
                 \x20       except Exception:\n\
                 \x20           pass\n\
                 \x20       super().shutdown_request(r)\n\
                 s = S(('127.0.0.1', int(sys.argv[1])), h.CGIHTTPRequestHandler)\n\
                 if sys.argv[2]:\n\
                 \x20   c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
                 \x20   c.load_cert_chain(sys.argv[2] + '/server.pem', sys.argv[2] + '/server.key')\n\
                 \x20   s.socket = c.wrap_socket(s.socket, server_side=True)\n\
                 s.serve_forever()\n",
            )
            .arg(port.to_string())
            .arg(certs)
            .current_dir(web),
        port,
        "http.server",
    );
    (server, port)
}

#[test]
fn remote_repository_is_cloned_over_https_trusting_a_ca_from_ssl_cert_file() {
    let mut r = Repo::new();
    r.write("deploy.sh", &format!("export TOKEN={GH}\n"));
    let id = r.commit("deploy script");
    let certs = tempfile::tempdir().unwrap();
    server::make_certs(certs.path());
    let web = tempfile::tempdir().unwrap();
    let (_server, port) = http_backend(r._dir.path(), web.path(), Some(certs.path()));
    let url = format!("https://127.0.0.1:{port}/cgi-bin/git/repo");
    let ca = certs.path().join("ca.pem");
    assert_clone_finds_with(&url, id, &[("SSL_CERT_FILE", ca.to_str().unwrap())]);

    // Without the test's CA the server is not trusted: exit 2, said why.
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--format", "json", "git", &url])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[test]
fn remote_repository_is_cloned_from_a_file_url() {
    let mut r = Repo::new();
    r.write("deploy.sh", &format!("export TOKEN={GH}\n"));
    let id = r.commit("deploy script");
    assert_clone_finds(&format!("file://{}", r.path.display()), id);
}

/// Debian's `sshd` on a random port, as root with a key made here: the
/// host key is pinned in a known_hosts file, the client key authorised for
/// this test only; GIT_SSH_COMMAND points ssh at both (as a user would).
#[test]
fn remote_repository_is_cloned_over_ssh_from_a_local_sshd() {
    let mut r = Repo::new();
    r.write("deploy.sh", &format!("export TOKEN={GH}\n"));
    let id = r.commit("deploy script");
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).display().to_string();
    for key in ["host", "client"] {
        server::run(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "leakhound-test",
                    "-f",
                ])
                .arg(p(key)),
        );
    }
    std::fs::copy(p("client.pub"), p("authorized_keys")).unwrap();
    let port = free_port();
    std::fs::write(
        p("sshd_config"),
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {}\n",
            p("host"),
            p("authorized_keys"),
            p("sshd.pid")
        ),
    )
    .unwrap();
    // sshd refuses to start without its privilege-separation directory,
    // which Debian's init scripts (not run in a container) create.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let _sshd = serve(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(p("sshd_config")),
        port,
        "sshd",
    );
    let host_key = std::fs::read_to_string(p("host.pub")).unwrap();
    let mut fields = host_key.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    std::fs::write(
        p("known_hosts"),
        format!("[127.0.0.1]:{port} {kind} {key}\n"),
    )
    .unwrap();
    let ssh = format!(
        "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes \
         -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
        p("client"),
        p("known_hosts")
    );
    assert_clone_finds_with(
        &format!("ssh://root@127.0.0.1:{port}{}", r.path.display()),
        id,
        &[("GIT_SSH_COMMAND", ssh.as_str())],
    );
}

/// A repository whose tip cannot be read is history not scanned: named on
/// stderr, exit 2, never "0 findings, exit 0" (a CI gate would pass).
#[test]
fn corrupt_tip_missing_object_and_damaged_pack_exit_2() {
    let build = || {
        let mut r = Repo::new();
        r.write("a.txt", &format!("token {GH}\n"));
        r.commit("one");
        r.write("b.txt", "x\n");
        let tip = r.commit("two");
        (r, tip)
    };
    // The tip commit's loose object overwritten with garbage.
    let (r, tip) = build();
    let obj = r.path.join(".git/objects").join(&tip[..2]).join(&tip[2..]);
    let mut perm = std::fs::metadata(&obj).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&obj, perm).unwrap();
    std::fs::write(&obj, b"garbage").unwrap();
    let (code, _, err) = r.scan(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("refs/heads/main") && err.contains("not scanned"),
        "{err}"
    );

    // The only branch points at an object that does not exist.
    let (r, _) = build();
    std::fs::write(
        r.path.join(".git/refs/heads/main"),
        "1234567890123456789012345678901234567890\n",
    )
    .unwrap();
    let (code, _, err) = r.scan(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refs/heads/main"), "{err}");
    // Named once, not again for HEAD, which points at the same branch.
    assert!(!err.contains("warning: HEAD"), "{err}");

    // Everything packed, and the pack's header damaged.
    let (r, _) = build();
    r.git(&["gc", "-q"]);
    let packs = r.path.join(".git/objects/pack");
    for e in std::fs::read_dir(&packs).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[..4].copy_from_slice(b"XXXX");
            let mut perm = std::fs::metadata(&p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&p, perm).unwrap();
            std::fs::write(&p, bytes).unwrap();
        }
    }
    let (code, f, err) = r.scan(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(f.is_empty() || err.contains("not scanned"), "{err}");
    assert!(err.contains("could not be scanned"), "{err}");
}

#[test]
fn uncommitted_in_a_bare_repository_is_an_error_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    git_in(dir.path(), &["init", "-q", "--bare", "b.git"]);
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["git", "--uncommitted"])
        .arg(dir.path().join("b.git"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("b.git: a bare repository has no work tree (--uncommitted)"),
        "{stderr}"
    );
}

/// A PEM key made by `openssl` here (not a real key of anyone's).
fn rsa_key(dir: &Path) -> String {
    let file = dir.join("made.key");
    server::run(
        Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&file)
            .arg("2048"),
    );
    let key = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    key
}

/// Later versions of a file are searched only around what changed: a
/// secret an edit left alone is not reported again, one the edit added is,
/// even where its keyword lies far (here 1.5 KB) before the change.
#[test]
fn later_versions_report_what_their_change_added() {
    let mut r = Repo::new();
    let key = rsa_key(&r.path);
    let filler = |from: usize, to: usize| -> String {
        (from..to)
            .map(|i| format!("setting_{i} = value {i}\n"))
            .collect()
    };
    let file = |tail: &str, key: &str| {
        format!(
            "{}GITHUB_TOKEN={GH}\n{}{key}{}{tail}",
            filler(0, 4),
            filler(4, 1500),
            filler(1500, 3000)
        )
    };
    r.write("deploy/settings.txt", &file("", &key));
    let first = r.commit("settings");
    // An edit far from both secrets that adds one.
    r.write(
        "deploy/settings.txt",
        &file(&format!("NEW_TOKEN={GH2}\n"), &key),
    );
    let second = r.commit("one more token");
    // One character of the key's 24th body line changed: a different key
    // whose BEGIN line (its keyword) is 1.5 KB before the change.
    let mut lines: Vec<String> = key.lines().map(str::to_string).collect();
    let c = if lines[24].starts_with('A') { "B" } else { "A" };
    lines[24].replace_range(0..1, c);
    let changed_key = lines.join("\n") + "\n";
    r.write(
        "deploy/settings.txt",
        &file(&format!("NEW_TOKEN={GH2}\n"), &changed_key),
    );
    let third = r.commit("rotate key");
    let (code, f, err) = r.scan(&[]);
    assert_eq!(code, Some(1), "{err}");
    let mut got = summary(&f);
    got.sort();
    let path = "deploy/settings.txt".to_string();
    let mut want = vec![
        (
            "github-classic-pat".to_string(),
            path.clone(),
            first.clone(),
        ),
        ("github-classic-pat".to_string(), path.clone(), second),
        ("private-key-rsa".to_string(), path.clone(), first),
        ("private-key-rsa".to_string(), path, third),
    ];
    want.sort();
    assert_eq!(got, want, "{err}");
}
