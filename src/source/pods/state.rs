//! The state file of `logs --pods-dir --state FILE`: one checkpoint per
//! container log stream, written whole to a temporary file beside it and
//! renamed over it, so a reader (a restarted agent) sees the old state or
//! the new one, never half of one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::tail::Checkpoint;

/// State files larger than this are refused (a node has a few thousand
/// streams, each about 200 bytes).
const MAX_STATE: u64 = 64 << 20;

const VERSION: u32 = 1;

/// Checkpoints by stream id (`StreamKey::id`).
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub streams: BTreeMap<String, Checkpoint>,
}

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> io::Result<State> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(e),
    };
    let mut text = Vec::new();
    file.take(MAX_STATE + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_STATE {
        return Err(io::Error::other(format!(
            "{}: larger than {} MiB; not a leakhound state file?",
            path.display(),
            MAX_STATE >> 20
        )));
    }
    let state: State = serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a leakhound state file: {e}", path.display()),
        )
    })?;
    if state.version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: state version {} (this leakhound writes {VERSION})",
                path.display(),
                state.version
            ),
        ));
    }
    Ok(state)
}

/// Writes the state atomically (temporary file, fsync, rename, fsync of
/// the directory).
pub fn save(path: &Path, streams: BTreeMap<String, Checkpoint>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let state = State {
        version: VERSION,
        streams,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".leakhound-state")
        .tempfile_in(dir)?;
    serde_json::to_writer(&mut tmp, &state)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    let _ = fs::metadata(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), State::default());
        let mut streams = BTreeMap::new();
        streams.insert(
            "ns_p_u/c/0".to_string(),
            Checkpoint {
                dev: 1,
                ino: 2,
                offset: 3,
                line: 4,
                head_len: 5,
                head_crc: 6,
                time: Some("2024-05-01T10:00:00Z".into()),
            },
        );
        save(&path, streams.clone()).unwrap();
        let state = load(&path).unwrap();
        assert_eq!(state.streams, streams);
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        fs::write(&path, b"{\"version\":1,").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("not a leakhound state file"), "{e}");
        fs::write(&path, b"{\"version\":9,\"streams\":{}}").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("version 9"));
    }
}
