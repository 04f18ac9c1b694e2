//! What every command gets from `main` and shares with the others: the `Context`
//! (data dir and configuration), the `Format` of `report`, and writing to standard
//! output (`say!`, `write_stdout`, and `is_broken_pipe`, which tells `main` that a
//! closed stdout is not a failure). A leaf: it imports nothing from this crate, so
//! `main` and every command can use it without going through each other.

use std::io::ErrorKind;
use std::path::PathBuf;

use clap::ValueEnum;
use pacer_engine::Config;

/// Output formats of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// A workbook (needs --out): a sheet per month.
    Xlsx,
}

/// What every command gets: where the data is and how the org is configured.
pub struct Context {
    pub data_dir: PathBuf,
    pub config: Config,
    /// The configuration file `config` was read from (`None`: the defaults), which
    /// `pacer serve` reads again on SIGHUP.
    pub config_path: Option<PathBuf>,
}

/// Writes a line to stdout (see [`write_stdout`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::context::write_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;

/// Writes to stdout; a closed pipe surfaces as an error that `main` treats as done.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Whether an error is a closed stdout (`pacer log | head`): not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}
