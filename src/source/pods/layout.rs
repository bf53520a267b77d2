//! The kubelet's log layout: `DIR/<namespace>_<pod>_<uid>/<container>/<N>.log`
//! for restart `N`, rotated to `<N>.log.<YYYYMMDD-hhmmss>` and later to
//! `<N>.log.<YYYYMMDD-hhmmss>.gz`.
//!
//! With Docker Engine (dockershim, cri-dockerd) `<N>.log` is a symbolic
//! link to Docker's json-file log `/var/lib/docker/containers/<id>/<id>-json.log`,
//! which Docker rotates itself: to `<id>-json.log.1` (and `.1.gz` with
//! compression), renumbering the older ones `.2`, `.3`, … at each rotation.
//! Those numbers move, so such files are ordered, and named in checkpoints,
//! by the time of their first record, which a rename or a compression
//! keeps; reading that first record is the only reading done here.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One container log stream: the files of one restart of one container.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// `<namespace>_<pod>_<uid>`, the pod's directory name.
    pub pod_dir: String,
    pub container: String,
    pub restart: u32,
}

impl StreamKey {
    /// The key as the state file names it: `pod_dir/container/N`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.pod_dir, self.container, self.restart)
    }

    /// Parses `StreamKey::id`.
    pub fn from_id(id: &str) -> Option<Self> {
        let mut parts = id.split('/');
        let (pod_dir, container, restart) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || parse_pod_dir(pod_dir).is_none() || container.is_empty() {
            return None;
        }
        Some(StreamKey {
            pod_dir: pod_dir.into(),
            container: container.into(),
            restart: restart.parse().ok()?,
        })
    }

    /// The container's directory.
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(&self.pod_dir).join(&self.container)
    }

    /// The live file, `<N>.log`.
    pub fn live(&self, root: &Path) -> PathBuf {
        self.dir(root).join(format!("{}.log", self.restart))
    }
}

/// `(namespace, pod, uid)` of a pod directory name. Namespaces and pod
/// names are DNS labels and subdomains, which hold no `_`.
pub fn parse_pod_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.splitn(3, '_');
    let (ns, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if ns.is_empty() || pod.is_empty() || uid.is_empty() || uid.contains('_') {
        return None;
    }
    Some((ns, pod, uid))
}

/// A file of a stream's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFile {
    pub path: PathBuf,
    /// The rotation suffix (`20240101-120000`); `None` for the live file.
    pub suffix: Option<String>,
    pub gzip: bool,
}

/// What a file name in a container directory is: restart number, rotation
/// suffix and whether gzipped. `None` for anything else (`.tmp` files of a
/// compression in progress, other files).
pub fn parse_log_name(name: &str) -> Option<(u32, Option<String>, bool)> {
    let (n, rest) = name.split_once(".log")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let restart: u32 = n.parse().ok()?;
    if rest.is_empty() {
        return Some((restart, None, false));
    }
    let rest = rest.strip_prefix('.')?;
    let (suffix, gzip) = match rest.strip_suffix(".gz") {
        Some(s) => (s, true),
        None => (rest, false),
    };
    let valid = !suffix.is_empty()
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'T' || b == b'Z');
    valid.then(|| (restart, Some(suffix.to_string()), gzip))
}

/// The files of a stream, oldest first: rotated files by suffix, then the
/// live file if present. When a rotated file exists both plain and
/// gzipped (a compression in progress), the plain one is listed.
pub fn chain(root: &Path, key: &StreamKey) -> io::Result<Vec<ChainFile>> {
    let dir = key.dir(root);
    let mut rotated: Vec<ChainFile> = Vec::new();
    let mut live = None;
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((restart, suffix, gzip)) = parse_log_name(name) else {
            continue;
        };
        if restart != key.restart {
            continue;
        }
        let file = ChainFile {
            path: entry.path(),
            suffix,
            gzip,
        };
        match file.suffix {
            None => live = Some(file),
            Some(_) => rotated.push(file),
        }
    }
    if let Some(live) = &live
        && fs::symlink_metadata(&live.path).is_ok_and(|m| m.file_type().is_symlink())
    {
        rotated.extend(docker_rotated(&live.path)?);
    }
    rotated.sort_by(|a, b| a.suffix.cmp(&b.suffix).then(a.gzip.cmp(&b.gzip)));
    rotated.dedup_by(|later, earlier| later.suffix == earlier.suffix);
    rotated.extend(live);
    Ok(rotated)
}

/// The files Docker rotated from the file `live` links to
/// (`<target>.<N>`, `<target>.<N>.gz`), each with the suffix
/// `docker-<nanoseconds of its first record's time, 20 digits>`, which
/// sorts them oldest first whatever their current numbers. A file whose
/// first record has no time is ordered by its modification time.
fn docker_rotated(live: &Path) -> io::Result<Vec<ChainFile>> {
    let target = match fs::canonicalize(live) {
        Ok(t) => t,
        // A dangling link: the container is gone; nothing rotated to read.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let (Some(dir), Some(base)) = (target.parent(), target.file_name().and_then(|b| b.to_str()))
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base))
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let (number, gzip) = match rest.strip_suffix(".gz") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = entry.path();
        let Some(nanos) = first_time(&path, gzip).or_else(|| modified(&path)) else {
            continue;
        };
        out.push(ChainFile {
            path,
            suffix: Some(format!("docker-{nanos:020}")),
            gzip,
        });
    }
    Ok(out)
}

/// Nanoseconds since 1970 of the time of a json-file log's first record.
fn first_time(path: &Path, gzip: bool) -> Option<u128> {
    use std::io::{BufRead, BufReader, Read};
    let file = fs::File::open(path).ok()?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // A json-file record is one line; its time is near the end of it.
    let mut line = Vec::new();
    BufReader::new(reader.take(64 * 1024))
        .read_until(b'\n', &mut line)
        .ok()?;
    let line = line.strip_suffix(b"\n")?;
    let first = *line.first()?;
    let record = super::format::parse(super::format::LogFormat::sniff(first), line);
    let time: jiff::Timestamp = record.time?.parse().ok()?;
    u128::try_from(time.as_nanosecond()).ok()
}

fn modified(path: &Path) -> Option<u128> {
    let t = fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos())
}

/// Every stream whose live file exists under `root`, with what could not
/// be listed (a directory that vanished while listed is not an error).
pub fn discover(root: &Path) -> io::Result<Vec<StreamKey>> {
    let mut out = Vec::new();
    for pod in fs::read_dir(root)? {
        let pod = pod?;
        let Some(pod_dir) = pod.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if parse_pod_dir(&pod_dir).is_none() {
            continue;
        }
        let Ok(containers) = fs::read_dir(pod.path()) else {
            continue;
        };
        for c in containers.flatten() {
            let Some(container) = c.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(files) = fs::read_dir(c.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Some((restart, None, false)) =
                    f.file_name().to_str().and_then(parse_log_name)
                {
                    out.push(StreamKey {
                        pod_dir: pod_dir.clone(),
                        container: container.clone(),
                        restart,
                    });
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_directory_names() {
        assert_eq!(
            parse_pod_dir(
                "kube-system_coredns-5d78c9869d-abcde_0b5f2c4e-1111-4c3b-9a2d-123456789abc"
            ),
            Some((
                "kube-system",
                "coredns-5d78c9869d-abcde",
                "0b5f2c4e-1111-4c3b-9a2d-123456789abc"
            ))
        );
        assert_eq!(parse_pod_dir("nounderscore"), None);
        assert_eq!(parse_pod_dir("ns_pod_"), None);
    }

    #[test]
    fn log_file_names() {
        assert_eq!(parse_log_name("0.log"), Some((0, None, false)));
        assert_eq!(parse_log_name("12.log"), Some((12, None, false)));
        assert_eq!(
            parse_log_name("0.log.20240101-120000"),
            Some((0, Some("20240101-120000".into()), false))
        );
        assert_eq!(
            parse_log_name("3.log.20240101-120000.gz"),
            Some((3, Some("20240101-120000".into()), true))
        );
        assert_eq!(parse_log_name("0.log.20240101-120000.gz.tmp"), None);
        assert_eq!(parse_log_name("x.log"), None);
        assert_eq!(parse_log_name("0.txt"), None);
    }

    #[test]
    fn chain_is_oldest_first_and_prefers_the_plain_copy() {
        let dir = tempfile::tempdir().unwrap();
        let key = StreamKey {
            pod_dir: "ns_p_u".into(),
            container: "c".into(),
            restart: 0,
        };
        let cdir = key.dir(dir.path());
        fs::create_dir_all(&cdir).unwrap();
        for name in [
            "0.log",
            "0.log.20240101-120500",
            "0.log.20240101-120000.gz",
            "0.log.20240101-120500.gz",
            "0.log.20240101-120300.gz.tmp",
            "1.log",
        ] {
            fs::write(cdir.join(name), b"").unwrap();
        }
        let names: Vec<String> = chain(dir.path(), &key)
            .unwrap()
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["0.log.20240101-120000.gz", "0.log.20240101-120500", "0.log"]
        );
        let found = discover(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].restart, 1);
        assert_eq!(StreamKey::from_id(&found[1].id()), Some(found[1].clone()));
    }

    #[cfg(unix)]
    #[test]
    fn dockers_rotated_files_follow_the_link_oldest_first_by_their_first_record() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let key = StreamKey {
            pod_dir: "ns_p_u".into(),
            container: "c".into(),
            restart: 0,
        };
        let cdir = key.dir(dir.path());
        fs::create_dir_all(&cdir).unwrap();
        let docker = dir.path().join("containers/abc");
        fs::create_dir_all(&docker).unwrap();
        let record =
            |t: &str| format!("{{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"{t}\"}}\n");
        let target = docker.join("abc-json.log");
        fs::write(&target, record("2026-12-05T10:00:09.5Z")).unwrap();
        // .1 is the newest rotated file, .3 the oldest; .2 is compressed.
        // The fraction digits differ in number, as Docker writes them.
        fs::write(
            docker.join("abc-json.log.1"),
            record("2026-12-05T10:00:05.25Z"),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), Default::default());
        gz.write_all(record("2026-12-05T10:00:05.1Z").as_bytes())
            .unwrap();
        fs::write(docker.join("abc-json.log.2.gz"), gz.finish().unwrap()).unwrap();
        fs::write(
            docker.join("abc-json.log.3"),
            record("2026-12-05T09:59:59Z"),
        )
        .unwrap();
        fs::write(docker.join("abc-json.log.tmp"), b"").unwrap();
        std::os::unix::fs::symlink(&target, cdir.join("0.log")).unwrap();
        let files = chain(dir.path(), &key).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "abc-json.log.3",
                "abc-json.log.2.gz",
                "abc-json.log.1",
                "0.log"
            ]
        );
        assert!(files[1].gzip && files[3].suffix.is_none());
        // Renumbered by the next rotation, a file keeps its suffix.
        let before = files[0].suffix.clone();
        fs::rename(docker.join("abc-json.log.3"), docker.join("abc-json.log.4")).unwrap();
        let again = chain(dir.path(), &key).unwrap();
        assert_eq!(again[0].suffix, before);
        // A dangling link (the container removed) lists no rotated file.
        fs::remove_dir_all(&docker).unwrap();
        assert_eq!(chain(dir.path(), &key).unwrap().len(), 1);
    }
}
