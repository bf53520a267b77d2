//! Where the cluster is and who we are there: a kubeconfig (`--kubeconfig`,
//! the `KUBECONFIG` list, `~/.kube/config`) read as kubectl reads it, or the
//! pod's service account when leakhound runs inside the cluster.
//!
//! kubectl's rules, kept here: files of the `KUBECONFIG` list are merged,
//! the first file that names a cluster, user or context wins, and so does
//! the first `current-context`; relative paths in a file are relative to
//! that file's directory; `--context` picks another context; a context's
//! `namespace` is the default namespace (else `default`). Without any
//! kubeconfig, `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted
//! service-account token, CA and namespace are used.
//!
//! The YAML is read with the crate's positioned tree over yaml-rust2
//! (`decode::yaml`), depth- and size-bounded like every manifest.

use std::path::{Path, PathBuf};

use crate::decode::encodings::base64_decode;
use crate::decode::yaml::{self, Node};

/// Where the service account's files are mounted in a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Largest kubeconfig, certificate or token file read.
const MAX_FILE: u64 = 16 << 20;

/// A kubeconfig or service account that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// An exec credential plugin (`users[].user.exec`): `aws eks get-token`,
/// `gke-gcloud-auth-plugin`, `kubelogin`, ...
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exec {
    pub api_version: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub install_hint: Option<String>,
    /// The kubeconfig's directory: a relative command (`./bin/token`) is
    /// run from there, as kubectl does.
    pub dir: Option<PathBuf>,
}

/// How we authenticate: any of these may be set, as in a kubeconfig user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Credentials {
    pub token: Option<String>,
    /// Read again before every request: projected service-account tokens
    /// are rotated by the kubelet while a long audit runs.
    pub token_file: Option<PathBuf>,
    pub basic: Option<(String, String)>,
    /// Client certificate and key (PEM).
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    pub exec: Option<Exec>,
}

/// One cluster to talk to, resolved from a kubeconfig or a service account.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `https://host:port` (a path prefix, as some proxies need, is kept).
    pub server: String,
    /// CA certificates (PEM) to trust instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify: true`.
    pub insecure: bool,
    pub credentials: Credentials,
    /// The context's namespace, the service account's, or `default`.
    pub namespace: String,
    /// Where this came from, for messages: `context NAME in FILE`, or the
    /// in-cluster service account.
    pub source: String,
}

/// What to read: the command line and the environment, passed in so tests
/// need not change the process's environment.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--kubeconfig FILE`: this file alone.
    pub kubeconfig: Option<PathBuf>,
    /// `--context NAME` instead of the current context.
    pub context: Option<String>,
    /// `$KUBECONFIG`: a list of files (`:`-separated; `;` on Windows).
    pub env_kubeconfig: Option<std::ffi::OsString>,
    /// `$HOME` (`~/.kube/config`).
    pub home: Option<PathBuf>,
    /// `$KUBERNETES_SERVICE_HOST` and `$KUBERNETES_SERVICE_PORT`.
    pub service_host: Option<String>,
    pub service_port: Option<String>,
    /// Where the service account's token, `ca.crt` and `namespace` are.
    pub service_account_dir: PathBuf,
}

impl LoadOptions {
    /// Options from the process's environment.
    pub fn from_env(kubeconfig: Option<PathBuf>, context: Option<String>) -> LoadOptions {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        LoadOptions {
            kubeconfig,
            context,
            env_kubeconfig: std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
            service_account_dir: var("LEAKHOUND_SERVICE_ACCOUNT_DIR")
                .map_or_else(|| PathBuf::from(SERVICE_ACCOUNT_DIR), PathBuf::from),
        }
    }
}

/// Resolves the cluster to audit, as kubectl would.
pub fn load(opts: &LoadOptions) -> Result<Target, ConfigError> {
    let files: Vec<PathBuf> = if let Some(f) = &opts.kubeconfig {
        vec![f.clone()]
    } else if let Some(list) = &opts.env_kubeconfig {
        std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    } else {
        opts.home
            .iter()
            .map(|h| h.join(".kube").join("config"))
            .filter(|p| p.is_file())
            .collect()
    };
    let explicit = opts.kubeconfig.is_some();
    let mut merged = Merged::default();
    for f in &files {
        // kubectl ignores missing files of the KUBECONFIG list, not a file
        // named on the command line.
        if !explicit && !f.exists() {
            continue;
        }
        merged.add(f)?;
    }
    if merged.files.is_empty() {
        if opts.context.is_some() {
            return Err(err(
                "a kubeconfig context is named, but no kubeconfig was found (none given, \
                 KUBECONFIG unset, no ~/.kube/config)",
            ));
        }
        return in_cluster(opts);
    }
    merged.resolve(opts.context.as_deref())
}

/// The pod's service account: the API server from the environment, the
/// token (read again before each request), CA and namespace from the
/// mounted files.
fn in_cluster(opts: &LoadOptions) -> Result<Target, ConfigError> {
    let (Some(host), Some(port)) = (&opts.service_host, &opts.service_port) else {
        return Err(err(
            "no kubeconfig found (none given, KUBECONFIG unset, no ~/.kube/config) and not \
             running in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set)",
        ));
    };
    let dir = &opts.service_account_dir;
    let token = dir.join("token");
    if !token.is_file() {
        return Err(err(format!(
            "running in a cluster, but the service account token {} is missing (is \
             automountServiceAccountToken false?)",
            token.display()
        )));
    }
    let ca = read_file(&dir.join("ca.crt"))?;
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    Ok(Target {
        server: format!("https://{host}:{port}"),
        ca_pem: Some(ca),
        insecure: false,
        credentials: Credentials {
            token_file: Some(token),
            ..Credentials::default()
        },
        namespace,
        source: format!("the in-cluster service account ({})", dir.display()),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    if buf.len() as u64 > MAX_FILE {
        return Err(err(format!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_FILE >> 20
        )));
    }
    Ok(buf)
}

/// A named entry of a kubeconfig list, with the file it came from.
struct Named {
    name: String,
    node: Node,
    dir: PathBuf,
    file: PathBuf,
}

/// Kubeconfig files merged in order: the first entry of each name wins.
#[derive(Default)]
struct Merged {
    files: Vec<PathBuf>,
    current: Option<String>,
    clusters: Vec<Named>,
    users: Vec<Named>,
    contexts: Vec<Named>,
}

impl Merged {
    fn add(&mut self, path: &Path) -> Result<(), ConfigError> {
        let bytes = read_file(path)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| err(format!("kubeconfig {} is not UTF-8", path.display())))?;
        let (docs, problem) = yaml::parse(&text);
        if let Some(p) = problem {
            return Err(err(format!(
                "kubeconfig {} is not valid YAML: {p}",
                path.display()
            )));
        }
        self.files.push(path.to_path_buf());
        let Some(doc) = docs.into_iter().next() else {
            return Ok(()); // an empty file, as kubectl accepts
        };
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        if self.current.is_none() {
            self.current = doc
                .str_at(&["current-context"])
                .filter(|c| !c.is_empty())
                .map(str::to_string);
        }
        for (list, field, out) in [
            ("clusters", "cluster", &mut self.clusters),
            ("users", "user", &mut self.users),
            ("contexts", "context", &mut self.contexts),
        ] {
            for item in doc.get(list).map(Node::items).unwrap_or(&[]) {
                let Some(name) = item.str_at(&["name"]) else {
                    continue;
                };
                if out.iter().any(|n| n.name == name) {
                    continue;
                }
                let node = item.get(field).cloned().unwrap_or_else(|| item.clone());
                out.push(Named {
                    name: name.to_string(),
                    node,
                    dir: dir.clone(),
                    file: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    fn resolve(&self, context: Option<&str>) -> Result<Target, ConfigError> {
        let files = self
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let name = match (context, &self.current) {
            (Some(c), _) => c.to_string(),
            (None, Some(c)) => c.clone(),
            (None, None) => {
                return Err(err(format!(
                    "kubeconfig {files} sets no current-context; name a context"
                )));
            }
        };
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| err(format!("context `{name}` is not in kubeconfig {files}")))?;
        let cluster_name = ctx.node.str_at(&["cluster"]).unwrap_or("");
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .ok_or_else(|| {
                err(format!(
                    "context `{name}` names cluster `{cluster_name}`, which is not in kubeconfig \
                     {files}"
                ))
            })?;
        let c = &cluster.node;
        let server = c
            .str_at(&["server"])
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(format!("cluster `{cluster_name}` has no server")))?
            .trim_end_matches('/')
            .to_string();
        let ca_pem = match (
            c.str_at(&["certificate-authority-data"]),
            c.str_at(&["certificate-authority"]),
        ) {
            (Some(d), _) if !d.is_empty() => Some(data(d, "certificate-authority-data", cluster)?),
            (_, Some(f)) if !f.is_empty() => Some(read_file(&cluster.dir.join(f))?),
            _ => None,
        };
        let insecure = c.str_at(&["insecure-skip-tls-verify"]) == Some("true");
        let user_name = ctx.node.str_at(&["user"]).unwrap_or("");
        let credentials = match self.users.iter().find(|u| u.name == user_name) {
            Some(u) => credentials(u)?,
            // A context without a user talks anonymously, as kubectl does.
            None if user_name.is_empty() => Credentials::default(),
            None => {
                return Err(err(format!(
                    "context `{name}` names user `{user_name}`, which is not in kubeconfig {files}"
                )));
            }
        };
        Ok(Target {
            server,
            ca_pem,
            insecure,
            credentials,
            namespace: ctx
                .node
                .str_at(&["namespace"])
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
                .to_string(),
            source: format!("context `{name}` of kubeconfig {}", ctx.file.display()),
        })
    }
}

/// A `*-data` field: base64 of PEM.
fn data(value: &str, field: &str, of: &Named) -> Result<Vec<u8>, ConfigError> {
    let compact: String = value.split_whitespace().collect();
    base64_decode(compact.as_bytes()).map_err(|e| {
        err(format!(
            "`{field}` of `{}` in {} is not valid base64 ({e})",
            of.name,
            of.file.display()
        ))
    })
}

/// A kubeconfig user's credentials; file names relative to its file.
fn credentials(u: &Named) -> Result<Credentials, ConfigError> {
    let n = &u.node;
    let s = |k: &str| n.str_at(&[k]).filter(|v| !v.is_empty());
    if n.get("auth-provider").is_some() {
        return Err(err(format!(
            "user `{}` in {} uses an auth-provider, which Kubernetes removed in 1.26 and \
             leakhound does not support; use an exec credential plugin (kubectl's docs name \
             one per provider) or a token",
            u.name,
            u.file.display()
        )));
    }
    let pem = |data_key: &str, file_key: &str| -> Result<Option<Vec<u8>>, ConfigError> {
        Ok(match (s(data_key), s(file_key)) {
            (Some(d), _) => Some(data(d, data_key, u)?),
            (None, Some(f)) => Some(read_file(&u.dir.join(f))?),
            _ => None,
        })
    };
    let cert = pem("client-certificate-data", "client-certificate")?;
    let key = pem("client-key-data", "client-key")?;
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(err(format!(
                "user `{}` in {} has a client certificate without its key, or a key without its \
                 certificate",
                u.name,
                u.file.display()
            )));
        }
    };
    let exec = match n.get("exec") {
        Some(e) => {
            let command = e
                .str_at(&["command"])
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    err(format!(
                        "user `{}` in {}: exec has no command",
                        u.name,
                        u.file.display()
                    ))
                })?;
            Some(Exec {
                api_version: e
                    .str_at(&["apiVersion"])
                    .unwrap_or("client.authentication.k8s.io/v1")
                    .to_string(),
                command: command.to_string(),
                args: e
                    .get("args")
                    .map(Node::items)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect(),
                env: e
                    .get("env")
                    .map(Node::items)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|v| {
                        Some((
                            v.str_at(&["name"])?.to_string(),
                            v.str_at(&["value"]).unwrap_or("").to_string(),
                        ))
                    })
                    .collect(),
                install_hint: e.str_at(&["installHint"]).map(str::to_string),
                dir: Some(u.dir.clone()),
            })
        }
        None => None,
    };
    Ok(Credentials {
        token: s("token").map(str::to_string),
        token_file: s("tokenFile").map(|f| u.dir.join(f)),
        basic: s("username").map(|user| (user.to_string(), s("password").unwrap_or("").into())),
        client_cert,
        exec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const A: &str = "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: prod\n  \
                     cluster:\n    server: https://10.0.0.1:6443/\n    certificate-authority: ca.pem\n\
                     users:\n- name: admin\n  user:\n    tokenFile: secrets/token\ncontexts:\n\
                     - name: prod\n  context:\n    cluster: prod\n    user: admin\n    namespace: shop\n";
    const B: &str = "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: prod\n  \
                     cluster:\n    server: https://shadowed:1\n- name: dev\n  cluster:\n    server: \
                     https://dev:6443\n    insecure-skip-tls-verify: true\nusers:\n- name: ci\n  user:\n    \
                     exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./get-token\n      \
                     args: [--cluster, dev]\n      env:\n      - name: REGION\n        value: eu\n\
                     contexts:\n- name: dev\n  context:\n    cluster: dev\n    user: ci\n";

    #[test]
    fn kubeconfig_list_merges_first_wins_and_resolves_relative_paths() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("b");
        std::fs::create_dir(&sub).unwrap();
        let a = write(d.path(), "a.yaml", A);
        write(d.path(), "ca.pem", "PEM");
        let b = write(&sub, "b.yaml", B);
        let list = std::env::join_paths([&a, &d.path().join("missing"), &b]).unwrap();
        let opts = LoadOptions {
            env_kubeconfig: Some(list),
            ..LoadOptions::default()
        };
        let t = load(&opts).unwrap();
        assert_eq!(t.server, "https://10.0.0.1:6443");
        assert_eq!(t.ca_pem.as_deref(), Some(&b"PEM"[..]));
        assert_eq!(t.namespace, "shop");
        assert_eq!(
            t.credentials.token_file,
            Some(d.path().join("secrets/token"))
        );
        let t = load(&LoadOptions {
            context: Some("dev".into()),
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(t.server, "https://dev:6443");
        assert!(t.insecure);
        assert_eq!(t.namespace, "default");
        let exec = t.credentials.exec.unwrap();
        assert_eq!(exec.command, "./get-token");
        assert_eq!(exec.args, ["--cluster", "dev"]);
        assert_eq!(exec.env, [("REGION".to_string(), "eu".to_string())]);
        assert_eq!(exec.dir.as_deref(), Some(sub.as_path()));
        let e = load(&LoadOptions {
            context: Some("nope".into()),
            ..opts
        })
        .unwrap_err();
        assert!(e.0.contains("context `nope` is not in kubeconfig"), "{e}");
    }

    #[test]
    fn in_cluster_service_account_is_used_without_a_kubeconfig() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "token", "tok");
        write(d.path(), "ca.crt", "CA");
        write(d.path(), "namespace", "audit\n");
        let opts = LoadOptions {
            home: Some(d.path().join("nohome")),
            service_host: Some("fd00::1".into()),
            service_port: Some("443".into()),
            service_account_dir: d.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let t = load(&opts).unwrap();
        assert_eq!(t.server, "https://[fd00::1]:443");
        assert_eq!(t.namespace, "audit");
        assert_eq!(t.credentials.token_file, Some(d.path().join("token")));
        let e = load(&LoadOptions {
            service_host: None,
            ..opts
        })
        .unwrap_err();
        assert!(e.0.contains("not running in a cluster"), "{e}");
    }

    #[test]
    fn broken_users_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let base = "current-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://k'}\n\
                    contexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user:\n";
        for (user, want) in [
            ("    auth-provider: {name: gcp}\n", "auth-provider"),
            ("    client-certificate-data: QUJD\n", "without its key"),
            (
                "    token-x: 1\n    client-key-data: '***'\n",
                "not valid base64",
            ),
        ] {
            let f = write(d.path(), "k.yaml", &format!("{base}{user}"));
            let e = load(&LoadOptions {
                kubeconfig: Some(f),
                ..LoadOptions::default()
            })
            .unwrap_err();
            assert!(e.0.contains(want), "{e}");
        }
    }
}
