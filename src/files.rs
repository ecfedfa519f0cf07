//! Reading the operator's small files (configuration, keys, certificates) with a bound: a path
//! that names a device, a pipe or a huge file is an error that names it, never a read that
//! fills memory or waits forever.

use std::io::{self, Read};
use std::path::Path;

/// The most a configuration file or a certificate chain may hold.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The most a key file (the master key, a client's public key, the server's TLS key) may hold.
pub const MAX_KEY_BYTES: u64 = 64 << 10;

/// The bytes of the regular file at `path`, if it holds at most `max` of them.
pub fn read_small(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a pipe would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {max} bytes")));
    }
    Ok(bytes)
}

/// The text of the regular file at `path`, if it is UTF-8 and holds at most `max` bytes.
pub fn read_small_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_small(path, max)?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_large_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let device = read_small(Path::new("/dev/zero"), MAX_KEY_BYTES).unwrap_err();
        assert!(device.to_string().contains("not a regular file"), "{device}");
        assert!(read_small(dir.path(), MAX_KEY_BYTES).unwrap_err().to_string().contains("not a regular file"));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 65]).unwrap();
        assert!(read_small(&big, 64).unwrap_err().to_string().contains("larger than 64 bytes"));
        assert_eq!(read_small(&big, 65).unwrap().len(), 65, "exactly the bound is read");
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        assert!(read_small_text(&big, 64).unwrap_err().to_string().contains("UTF-8"));
        let missing = read_small(&dir.path().join("missing"), 64).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        assert!(read_small(&fifo, MAX_CONFIG_BYTES).unwrap_err().to_string().contains("not a regular file"));
    }
}
