//! The trait a sink implements.

use crate::{Error, Record};

/// A sink fed with whole records, in order within each stream.
///
/// [`run`](crate::run) calls [`write`](Driver::write) for every record and
/// [`flush`](Driver::flush) whenever the container's pipes have nothing more to read at the
/// moment, and once more at the end: a sink may buffer between flushes.
///
/// What an error means is part of the contract, and the run's [`Summary`](crate::Summary)
/// counts on it: a failed `write` means the record was not taken and is lost (it must not be
/// partly taken either); a failed `flush` loses nothing yet, what is buffered stays for the
/// next flush, and only the last flush's failure loses it.
pub trait Driver {
    /// Takes one record, whole, or refuses it with an error.
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error>;

    /// Pushes out what is buffered, keeping what could not be written for the next call.
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
