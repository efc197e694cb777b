//! A container's log: its stdout and stderr, as the monitor writes them to
//! `<root>/containers/<id>/log`, and copying it out, following it until the
//! container exits. Logs depend on containers, never the reverse.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use crate::container::ContainerRecord;
use crate::error::{Error, Kind, Result};
use crate::watch::Watch;
use crate::Sandbox;

impl Sandbox {
    /// The path of a container's log.
    pub fn log_path(&self, c: &ContainerRecord) -> std::path::PathBuf {
        self.store.dir(Kind::Container, &c.id).join("log")
    }

    /// Copies the container's log to `out`; with `follow`, keeps copying
    /// until the container has exited and the log is drained, and returns
    /// its exit code.
    pub fn copy_logs(
        &self,
        c: &ContainerRecord,
        out: &mut dyn Write,
        follow: bool,
    ) -> Result<Option<i32>> {
        let path = self.log_path(c);
        let mut watch = if follow {
            Some(Watch::new(&self.store.dir(Kind::Container, &c.id))?)
        } else {
            None
        };
        let mut log = match File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::OpenLog { path, source }),
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Read the record first: once it says exited, one more drain of
            // the log gets everything the process wrote.
            // A container removed once it exited (`--rm`, the API's
            // AutoRemove) is done: the open log still holds what it wrote.
            let fresh = match self.container(&c.id) {
                Ok(f) => Some(f),
                Err(e) if e.is_not_found() && log.is_some() => None,
                Err(e) => return Err(e),
            };
            let done = fresh.as_ref().is_none_or(|f| {
                f.exit.is_some()
                    || f.monitor
                        .as_ref()
                        .is_some_and(|m| !m.is_alive(&self.host.proc))
            });
            let code = fresh.and_then(|f| f.exit.map(|e| e.code));
            if log.is_none() {
                log = File::open(&path).ok();
            }
            if let Some(f) = log.as_mut() {
                loop {
                    let n = f.read(&mut buf).map_err(|source| Error::ReadLog {
                        path: path.clone(),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n]).map_err(|source| Error::CopyLog {
                        path: path.clone(),
                        source,
                    })?;
                }
                out.flush().map_err(|source| Error::CopyLog {
                    path: path.clone(),
                    source,
                })?;
            }
            let Some(w) = watch.as_mut() else {
                return Ok(code);
            };
            if done {
                return Ok(code);
            }
            w.wait(Duration::from_millis(250))?;
        }
    }
}
