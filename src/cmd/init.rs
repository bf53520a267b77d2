//! `leakhound init` and `leakhound man`.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::finish;
use leakhound::config;

/// `leakhound init`: writes the commented config template.
pub(crate) fn init(dir: &Path, force: bool) -> Result<u8> {
    let path = dir.join(config::FILE_NAME);
    if path.exists() && !force {
        bail!("{} exists; use --force to replace it", path.display());
    }
    std::fs::write(&path, config::TEMPLATE)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("leakhound: wrote {}", path.display());
    Ok(0)
}

/// `leakhound man`: the main page on standard output, or every page
/// (`leakhound.1`, `leakhound-SUB.1`, `leakhound-rules-list.1`, …) in `dir`.
pub(crate) fn man(dir: Option<&Path>) -> Result<u8> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        finish(io::stdout().lock().write_all(&page))?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Breadth-first over subcommands with their page names; no recursion.
    let mut queue = vec![("leakhound".to_string(), cmd)];
    let mut written = 0;
    while let Some((name, mut c)) = queue.pop() {
        c = c.name(name.clone()).bin_name(name.replace('-', " "));
        for sub in c.get_subcommands() {
            if sub.get_name() != "help" {
                queue.push((format!("{name}-{}", sub.get_name()), sub.clone()));
            }
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(c).render(&mut page)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
    }
    eprintln!("leakhound: wrote {written} man pages to {}", dir.display());
    Ok(0)
}
