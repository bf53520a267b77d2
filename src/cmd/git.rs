//! `leakhound git`: a repository's history (or its staged or uncommitted
//! changes), local or cloned into a temporary directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{CommonArgs, GitArgs};
use crate::cmd::progress;
use crate::{Settings, Units, report_outcome, settings, skip_printer};
use leakhound::pipeline;
use leakhound::source::fs::WalkOptions;

pub(crate) fn git(common: &CommonArgs, args: &GitArgs) -> Result<u8> {
    use leakhound::source::git;
    let tmp;
    let (repo, root) = if git::is_url(&args.repo) {
        tmp = tempfile::tempdir().context("creating a temporary directory for the clone")?;
        // Dropping `tmp` removes the clone on every return and unwinding
        // panic; a signal ends the process without either, so it removes
        // the clone itself.
        remove_on_signal(tmp.path().to_path_buf())?;
        (
            git::clone_bare(&args.repo, tmp.path(), common.timeout)?,
            None,
        )
    } else {
        let repo = git::open(Path::new(&args.repo))?;
        let root = repo.workdir().unwrap_or(repo.path()).to_path_buf();
        (repo, Some(root))
    };
    let Settings {
        scanner,
        max_file_size,
        ..
    } = settings(common, root.as_deref(), args.max_file_size)?;
    let on_skip = skip_printer(common, &scanner);
    if args.uncommitted {
        if repo.workdir().is_none() {
            anyhow::bail!(
                "{}: a bare repository has no work tree (--uncommitted)",
                repo.path().display()
            );
        }
        let paths = git::uncommitted(&repo)?;
        let opts = WalkOptions {
            no_ignore: true,
            max_file_size,
        };
        let counters = pipeline::Counters::default();
        let outcome = if paths.is_empty() {
            pipeline::Outcome::default()
        } else {
            pipeline::scan_paths(&scanner, &paths, &opts, &on_skip, &counters)
        };
        return report_outcome(
            common,
            &scanner,
            outcome,
            false,
            root.as_deref(),
            Units::Files,
        );
    }
    let plan = if args.staged {
        git::staged(&repo)?
    } else {
        git::plan(
            &repo,
            &git::GitOptions {
                branch: args.branch.clone(),
                since_commit: args.since_commit.clone(),
                range: args.range.clone(),
                all_objects: args.all_objects,
            },
        )?
    };
    let counters = pipeline::Counters::default();
    // A history's blobs are counted as its walk finds them: no total.
    let total = plan.history.is_none().then_some(plan.blobs.len() as u64);
    let what = format!("blobs of {} commits", plan.commits);
    let outcome = progress::while_running(common, &counters, total, &what, || {
        pipeline::scan_git(&scanner, &repo, plan, max_file_size, &on_skip, &counters)
    });
    // A history scan that could not read everything is not complete: exit 2.
    report_outcome(
        common,
        &scanner,
        outcome,
        false,
        root.as_deref(),
        Units::Blobs,
    )
}

/// On SIGINT, SIGTERM or SIGHUP: removes `dir` (a temporary clone) and
/// exits as the signal would (128 + its number).
pub(crate) fn remove_on_signal(dir: PathBuf) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            // The clone may still be writing: try again while files appear.
            for _ in 0..20 {
                if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}
