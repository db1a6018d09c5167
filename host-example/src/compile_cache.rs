//! Compile once: the component's compiled form, kept in an owner-only cache directory.
//!
//! Compiling the component costs hundreds of milliseconds; loading its compiled form costs
//! about one. A process that finds a compiled form for the same component bytes, the same
//! wasmtime build and the same engine settings loads it instead of compiling.
//!
//! Loading compiled code is trusting it: wasmtime's `Component::deserialize` runs what it is
//! given as native code. The cache is trusted because
//! - each file carries the SHA-256 of its compiled bytes, checked before loading, so a file
//!   torn by a crash or damaged on disk is compiled again, never run;
//! - its key is a SHA-256 over the component's bytes and wasmtime's compatibility hash of the
//!   engine (version and settings): another component, another wasmtime or other settings
//!   never load an old compilation;
//! - its directory is created owner-only (0700) and used only while it is a real directory
//!   owned by this user with no group or other permissions; each file is written exclusively
//!   (mode 0600, no symlinks followed) and loaded only when the opened file is a regular file
//!   owned by this user, owner-only, with one link. Whoever can write there can already run
//!   code as this user.
//!
//! The cache never decides whether a command works: a cache that cannot be used is logged
//! and the component is compiled as if there were none.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::{Engine, error::Context as _};

/// The environment variable naming the cache directory (empty: no cache).
pub const CACHE_ENV: &str = "CONNECTOR_CACHE_DIR";

/// Where a loaded component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (and stored in the cache when there is one).
    Compiled,
    /// Loaded from the cache's compiled form.
    Cache,
}

/// The component for `wasm` on `engine`, from `cache` when it holds a compiled form for
/// exactly these bytes and this engine, else compiled (and stored there).
pub fn load(
    engine: &Engine,
    wasm: &[u8],
    cache: Option<&Path>,
) -> wasmtime::Result<(Component, Origin)> {
    let digest = ring::digest::digest(&ring::digest::SHA256, wasm);
    load_digested(engine, wasm, digest.as_ref(), cache)
}

/// [`load`] for a component whose SHA-256 is known (the one built into the binary, hashed at
/// build time): a cache hit reads nothing of `wasm`.
pub fn load_digested(
    engine: &Engine,
    wasm: &[u8],
    wasm_sha256: &[u8],
    cache: Option<&Path>,
) -> wasmtime::Result<(Component, Origin)> {
    let Some(dir) = cache else {
        return Ok((compile(engine, wasm)?, Origin::Compiled));
    };
    let path = dir.join(format!("{}.cwasm", key(engine, wasm_sha256)));
    let mut usable = true;
    match read_trusted(dir, &path) {
        Ok(Cached::Found(compiled)) => {
            // SAFETY: the bytes come from a file this user wrote for exactly this component
            // and engine, in a directory only this user can write (checked on the opened
            // file); wasmtime also checks the engine compatibility header.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize(engine, &compiled) } {
                Ok(component) => return Ok((component, Origin::Cache)),
                Err(error) => tracing::warn!(
                    path = %path.display(),
                    error = %format!("{error:#}"),
                    "the compiled component in the cache does not load; compiling"
                ),
            }
        }
        Ok(Cached::Absent) => {}
        // A file that is not ours to trust is replaced (the directory is ours).
        Ok(Cached::Untrusted(error)) => tracing::warn!(
            path = %path.display(),
            %error,
            "the compiled component in the cache is not trusted; compiling"
        ),
        Err(error) => {
            tracing::warn!(
                path = %path.display(),
                %error,
                "the compile cache cannot be used; compiling"
            );
            usable = false;
        }
    }
    let component = compile(engine, wasm)?;
    if !usable {
        return Ok((component, Origin::Compiled));
    }
    if let Err(error) = store(dir, &path, &component) {
        tracing::warn!(path = %path.display(), %error, "could not keep the compiled component");
    }
    Ok((component, Origin::Compiled))
}

fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
    Component::new(engine, wasm).context("compiling the component")
}

/// The cache key: SHA-256 of a version tag, the component's SHA-256 and the engine's
/// compatibility hash (wasmtime version and every setting that changes compiled code).
fn key(engine: &Engine, wasm_sha256: &[u8]) -> String {
    struct Digest(ring::digest::Context);
    impl Hasher for Digest {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut digest = Digest(ring::digest::Context::new(&ring::digest::SHA256));
    digest.0.update(b"oauth-connector compiled component v2\0");
    digest.0.update(wasm_sha256);
    engine.precompile_compatibility_hash().hash(&mut digest);
    digest
        .0
        .finish()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What the cache holds for one key.
enum Cached {
    /// Nothing yet.
    Absent,
    /// A compiled form that passed the checks.
    Found(Vec<u8>),
    /// A file that may not be trusted (a symlink, another owner, other permissions).
    Untrusted(std::io::Error),
}

/// The compiled form at `path` in `dir`; an error when the directory itself cannot be
/// trusted (then nothing is read or written there).
fn read_trusted(dir: &Path, path: &Path) -> std::io::Result<Cached> {
    match check_private_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Cached::Absent),
        checked => checked?,
    }
    let mut file = match open_no_follow(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Cached::Absent),
        Err(error) => return Ok(Cached::Untrusted(error)),
    };
    if let Err(error) = check_private_file(&file) {
        return Ok(Cached::Untrusted(error));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let digest_len = ring::digest::SHA256.output_len();
    if bytes.len() < digest_len {
        return Ok(Cached::Untrusted(std::io::Error::other(
            "the cached file is truncated",
        )));
    }
    let compiled = bytes.split_off(digest_len);
    if ring::digest::digest(&ring::digest::SHA256, &compiled).as_ref() != bytes.as_slice() {
        return Ok(Cached::Untrusted(std::io::Error::other(
            "the cached file's digest does not match its contents",
        )));
    }
    Ok(Cached::Found(compiled))
}

/// Writes `component`'s compiled form to `path`: a new owner-only file, renamed into place.
fn store(dir: &Path, path: &Path, component: &Component) -> std::io::Result<()> {
    create_private_dir(dir)?;
    check_private_dir(dir)?;
    let bytes = component
        .serialize()
        .map_err(|error| std::io::Error::other(format!("{error:#}")))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let partial = path.with_extension(format!("{}-{nanos}.partial", std::process::id()));
    // The file starts with the SHA-256 of the compiled bytes, checked before they are
    // loaded: a file torn by a crash (or damaged on disk) is compiled again, never run.
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let written = create_new_private(&partial)
        .and_then(|mut file| {
            file.write_all(digest.as_ref())?;
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// The default cache directory: `$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows, + `oauth-connector`. `env`
/// looks up environment variables.
pub fn default_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| {
        env(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(target_os = "macos") {
        set("HOME").map(|home| home.join("Library/Caches"))
    } else if cfg!(windows) {
        set("LOCALAPPDATA")
    } else {
        set("XDG_CACHE_HOME").or_else(|| set("HOME").map(|home| home.join(".cache")))
    }?;
    Some(base.join("oauth-connector"))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir)?;
    let ours = meta.uid() == effective_uid();
    if !meta.is_dir() || !ours || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} must be a directory owned by this user and accessible to it alone",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(unix)]
fn check_private_file(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    let trusted = meta.is_file()
        && meta.uid() == effective_uid()
        && meta.mode() & 0o077 == 0
        && meta.nlink() == 1;
    if !trusted {
        return Err(std::io::Error::other(
            "the cached file is not a private file of this user's",
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_file(_: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_new_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn create_new_private(path: &Path) -> std::io::Result<File> {
    File::options().write(true).create_new(true).open(path)
}

#[cfg(unix)]
#[allow(unsafe_code)] // one libc call without arguments
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
