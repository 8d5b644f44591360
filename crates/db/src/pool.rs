//! A small pool of read connections, used from blocking threads. SQLite in WAL mode lets these
//! read while the writer writes; PostgreSQL readers are ordinary connections.

use std::sync::{Condvar, Mutex};

use crate::DbError;
use crate::conn::Conn;

pub(crate) struct Pool {
    idle: Mutex<Vec<Box<dyn Conn>>>,
    open: Mutex<usize>,
    available: Condvar,
    max: usize,
    connect: Box<dyn Fn() -> Result<Box<dyn Conn>, DbError> + Send + Sync>,
}

impl Pool {
    pub fn new(
        max: usize,
        connect: Box<dyn Fn() -> Result<Box<dyn Conn>, DbError> + Send + Sync>,
    ) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            available: Condvar::new(),
            max,
            connect,
        }
    }

    /// Runs `f` on a pooled connection. A connection that failed is dropped, not returned, so a
    /// broken PostgreSQL session does not poison later reads.
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        let mut conn = self.checkout()?;
        let r = f(conn.as_mut());
        if r.is_ok() {
            self.idle.lock().map_err(|_| DbError::Closed)?.push(conn);
        } else if let Ok(mut open) = self.open.lock() {
            *open -= 1;
        }
        self.available.notify_one();
        r
    }

    fn checkout(&self) -> Result<Box<dyn Conn>, DbError> {
        let mut idle = self.idle.lock().map_err(|_| DbError::Closed)?;
        loop {
            if let Some(c) = idle.pop() {
                return Ok(c);
            }
            {
                let mut open = self.open.lock().map_err(|_| DbError::Closed)?;
                if *open < self.max {
                    *open += 1;
                    drop(open);
                    drop(idle);
                    return (self.connect)().inspect_err(|_| {
                        if let Ok(mut open) = self.open.lock() {
                            *open -= 1;
                        }
                    });
                }
            }
            idle = self.available.wait(idle).map_err(|_| DbError::Closed)?;
        }
    }
}
