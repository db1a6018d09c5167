//! Standard output's reader going away (`connector-host providers | head`) told apart from
//! every other failure to write.

use std::io::Write;

/// Standard output as the commands write it: a write that fails because the reader closed
/// the pipe is marked [`OutputClosed`], so that it is told apart from a broken connection to
/// a server or a database, which stays an error.
pub(super) struct Output<'a>(pub(super) &'a mut dyn Write);

impl Write for Output<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes).map_err(mark_closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(mark_closed)
    }
}

fn mark_closed(error: std::io::Error) -> std::io::Error {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, OutputClosed)
    } else {
        error
    }
}

/// Standard output's reader closed it.
#[derive(Debug)]
struct OutputClosed;

impl std::fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for OutputClosed {}

/// Whether `error` is a write to standard output that its reader closed.
pub(super) fn closed(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(closed_io)
    })
}

/// [`closed`], for a write's own error.
pub(super) fn closed_io(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<OutputClosed>())
}
