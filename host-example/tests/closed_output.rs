//! A reader that closes standard output early (`connector-host providers | head`) ends the
//! command quietly with exit 0, as `head` meant it to; any other failure to write stays an
//! error.

use std::io::{ErrorKind, Write};
use std::process::{Command, Stdio};

mod support;
use support::connector_host_into;

/// Takes `room` bytes, then fails every write with `kind`.
struct Failing {
    room: usize,
    kind: ErrorKind,
    taken: Vec<u8>,
}

impl Write for Failing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(self.kind.into());
        }
        let taken = bytes.len().min(self.room);
        self.room -= taken;
        self.taken.extend_from_slice(&bytes[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `connector-host completions bash` in-process, its output failing after `room` bytes.
fn completions_into(room: usize, kind: ErrorKind) -> (i32, Vec<u8>, String) {
    let mut out = Failing {
        room,
        kind,
        taken: vec![],
    };
    let mut err = Vec::new();
    let code = connector_host_into(&["completions", "bash"], &mut out, &mut err);
    (code, out.taken, String::from_utf8(err).unwrap())
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let (code, taken, err) = completions_into(100, ErrorKind::BrokenPipe);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(taken.len(), 100);
    assert!(taken.starts_with(b"_connector__host() {\n"));
}

#[test]
fn other_write_failures_stay_errors() {
    let (code, _, err) = completions_into(100, ErrorKind::StorageFull);
    assert_eq!(code, 1);
    // One error line (its text is the standard library's).
    assert!(err.starts_with("error: ") && err.ends_with('\n'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
}

#[test]
fn the_binary_exits_quietly_when_its_reader_is_gone() {
    // The pipe's reading end is closed before the program starts, so its first write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(["completions", "bash"])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).as_ref()
        ),
        (Some(0), "")
    );
}
