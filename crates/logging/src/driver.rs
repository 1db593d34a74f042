//! The trait a sink implements.

use crate::{Error, Record};

/// A sink fed with whole records, in order within each stream.
///
/// [`run`](crate::run) calls [`write`](Driver::write) for every record and
/// [`flush`](Driver::flush) whenever the container's pipes have nothing more to read at the
/// moment, and once more at the end: a sink may buffer between flushes.
pub trait Driver {
    /// Takes one record.
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error>;

    /// Pushes out what is buffered.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

impl<D: Driver + ?Sized> Driver for Box<D> {
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error> {
        (**self).write(record)
    }

    fn flush(&mut self) -> Result<(), Error> {
        (**self).flush()
    }
}
