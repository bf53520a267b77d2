//! Notices: what a scan did not read (or not wholly), and why.
//!
//! Every source, decoder and the run loop report what they left out as a
//! [`Notice`]: the unit's display path, a human message and a typed
//! [`NoticeKind`]. Callers decide on the kind (is the scan incomplete? is it
//! routine enough to print only with `-v`? which summary counter?), never
//! on the message text, which may name a CLI flag and is the binary's
//! business to show.

/// Something not scanned (or not wholly), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The unit as reporters name it (a file, `archive!entry`, a layer).
    pub path: String,
    /// What happened, for people.
    pub reason: String,
    pub kind: NoticeKind,
}

impl Notice {
    pub fn new(kind: NoticeKind, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Notice {
            path: path.into(),
            reason: reason.into(),
            kind,
        }
    }

    /// A failure (unreadable, vanished, corrupt, a panic), as opposed to
    /// something left out on purpose: the scan is incomplete.
    pub fn is_error(&self) -> bool {
        self.kind.is_error()
    }
}

/// Why something was not scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoticeKind {
    /// It could not be read: I/O error, vanished, corrupt object or layer,
    /// digest mismatch, a history walk cut short.
    Unreadable,
    /// Scanning it panicked: a bug of ours, never a clean exit.
    Internal,
    /// A network request for it got no (whole) answer within the
    /// deadline: the input is unscanned, like an unreadable one.
    Timeout,
    /// Larger than the configured maximum file size.
    TooLarge,
    /// An allowlist path covers it, so every finding in it would be
    /// silenced: not read at all.
    Allowlisted,
    /// A `.gitignore`, `.ignore` or Git exclude leaves it out.
    Ignored,
    /// A decoder stopped on purpose (depth limit, size budget, a value it
    /// could not decode).
    DecodeLimit,
    /// An archive, or an entry of it, was not opened (nesting limit, bomb
    /// guard, unreadable or unsupported archive).
    ArchiveLimit,
}

impl NoticeKind {
    /// Kinds that make a scan incomplete (exit 2 with `--strict`).
    pub fn is_error(self) -> bool {
        matches!(
            self,
            NoticeKind::Unreadable | NoticeKind::Internal | NoticeKind::Timeout
        )
    }

    /// Kinds left out on purpose and possibly many (named only with `-v`).
    pub fn is_routine(self) -> bool {
        matches!(self, NoticeKind::Allowlisted | NoticeKind::Ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreadable_internal_and_timeout_make_a_scan_incomplete() {
        use NoticeKind::*;
        for kind in [
            Unreadable,
            Internal,
            Timeout,
            TooLarge,
            Allowlisted,
            Ignored,
            DecodeLimit,
            ArchiveLimit,
        ] {
            let n = Notice::new(kind, "p", "r");
            assert_eq!(
                n.is_error(),
                matches!(kind, Unreadable | Internal | Timeout),
                "{kind:?}"
            );
        }
    }
}
