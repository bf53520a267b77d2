//! Command-line definitions (clap) only; no behaviour here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use leakhound::report::Format;
use leakhound::rules::Confidence;

#[derive(Debug, Parser)]
#[command(
    name = "leakhound",
    version,
    about = "Find leaked secrets in files, Git history, container images and logs.",
    after_help = "Exit codes: 0 nothing found, 1 findings, 2 the scan could not be completed as asked."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Output format [default: text; jsonl for `logs`].
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Include raw secret values in the report (they are masked by default).
    #[arg(long, global = true)]
    pub show_secrets: bool,
    /// Extra rule file or directory of *.toml rule files (repeatable).
    #[arg(long = "rules", global = true, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Report only findings of at least this confidence.
    #[arg(long, global = true, value_enum, default_value_t = ConfidenceArg::Medium)]
    pub min_confidence: ConfidenceArg,
    /// No summary and no warnings on standard error; only the report.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// `scan` and `git`: decoding steps followed into encoded content
    /// (Kubernetes Secrets, base64, hex, percent, escapes, gzip); 0 turns
    /// decoding off.
    #[arg(long, global = true, value_name = "N", default_value_t = 3)]
    pub decode_depth: usize,
    /// `scan` and `git`: decoded bytes produced per file at most (bounds
    /// nested encodings and compression bombs).
    #[arg(long, global = true, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_decoded_size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfidenceArg {
    Low,
    Medium,
    High,
}

impl From<ConfidenceArg> for Confidence {
    fn from(c: ConfidenceArg) -> Self {
        match c {
            ConfidenceArg::Low => Confidence::Low,
            ConfidenceArg::Medium => Confidence::Medium,
            ConfidenceArg::High => Confidence::High,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan files and directories (`-` reads standard input).
    Scan(ScanArgs),
    /// Scan log streams line by line (standard input when no FILE), reporting
    /// each secret as soon as its line has arrived.
    Logs(LogsArgs),
    /// Scan a Git repository's history: every blob of every ref, each once,
    /// attributed to the commit that introduced it.
    Git(GitArgs),
    /// List or check rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories to scan; `-` is standard input.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Also scan files that .gitignore, .ignore and git excludes leave out.
    #[arg(long)]
    pub no_ignore: bool,
    /// Skip (and report) files larger than this: bytes, or with a suffix
    /// K, M, G (powers of 1024; KiB/MiB/GiB also accepted).
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Exit 2 if any file could not be read.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct GitArgs {
    /// Repository path (work tree, bare or mirror) or URL to clone.
    #[arg(default_value = ".")]
    pub repo: String,
    /// Only this ref's history.
    #[arg(long, value_name = "REF")]
    pub branch: Option<String>,
    /// Only content introduced by commits not reachable from REV (a PR gate).
    #[arg(long, value_name = "REV", conflicts_with_all = ["range", "staged", "uncommitted"])]
    pub since_commit: Option<String>,
    /// Only content introduced by commits in A..B.
    #[arg(long, value_name = "A..B", conflicts_with_all = ["staged", "uncommitted", "branch"])]
    pub range: Option<String>,
    /// Only what is staged (the index against HEAD): for pre-commit hooks.
    #[arg(long, conflicts_with = "uncommitted")]
    pub staged: bool,
    /// Only work-tree changes against HEAD (modified and new files).
    #[arg(long)]
    pub uncommitted: bool,
    /// Also scan unreachable (dangling) blobs left by rebases and resets.
    #[arg(long)]
    pub all_objects: bool,
    /// Skip (and report) blobs larger than this.
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size)]
    pub max_file_size: u64,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Log files to scan in turn; standard input when none (or `-`).
    pub files: Vec<PathBuf>,
    /// Keep reading a file as it grows (like `tail -f`), following truncation.
    #[arg(long)]
    pub follow: bool,
    /// Longest line scanned whole; longer lines are scanned in overlapping
    /// windows, never buffered without bound.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_line: u64,
    /// Pass the stream through to standard output with every secret replaced
    /// by a mask; findings then go to standard error (or --output).
    #[arg(long)]
    pub redact: bool,
    /// The mask --redact writes instead of `[REDACTED:rule-id]`.
    #[arg(long, value_name = "STRING", requires = "redact")]
    pub mask: Option<String>,
    /// Report every occurrence of a secret, not only the first.
    #[arg(long)]
    pub report_repeats: bool,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules in effect (the default pack plus --rules).
    List,
    /// Validate a rule file or directory and run its examples (default: the built-in pack).
    Check {
        /// Rule file or directory; the built-in pack when omitted.
        path: Option<PathBuf>,
    },
}

/// Parses `100MiB`, `10M`, `512k`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 1048576, 512K, 100MiB, 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (use K, M or G)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("7"), Ok(7));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5T").is_err());
    }
}
