//! `stratbox data ...`: candle data commands.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use stratbox_host::data::{
    DataSetInfo, DataSetKey, DataSets, SynthParams, parse_candles, synthesize, write_candles,
};
use stratbox_host::domain::{MAX_CANDLE_TS, Timeframe};

use stratbox_host::domain::{parse_instant, parse_through};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write reproducible synthetic candles (geometric Brownian motion) as CSV.
    Synth(SynthArgs),
    /// Store a candle file (our CSV, Binance kline CSV, or Arrow IPC /
    /// Feather) as the data set SYMBOL/TIMEFRAME, replacing what it held.
    Import(ImportArgs),
    /// Download Binance kline history into a data set (or a CSV file);
    /// run it again to resume an interrupted download.
    Download(super::download::DownloadArgs),
    /// List the stored data sets.
    List(DataDirArg),
    /// Write a data set (or a range of it) as CSV.
    Export(ExportArgs),
    /// Delete a data set.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct DataDirArg {
    /// Data directory (the one `stratbox serve` uses).
    #[arg(long, env = "STRATBOX_DATA_DIR", default_value = "data")]
    pub(super) data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The candle file.
    file: PathBuf,
    /// Exchange symbol of the candles, e.g. BTCUSDT.
    #[arg(long)]
    symbol: String,
    /// Their timeframe: 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d or 1w.
    #[arg(long)]
    timeframe: Timeframe,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// SYMBOL/TIMEFRAME, e.g. BTCUSDT/1m.
    name: String,
    /// First candle: RFC 3339 time, a date (YYYY-MM-DD), or epoch ms.
    #[arg(long, value_parser = parse_instant)]
    from: Option<i64>,
    /// Last candle (inclusive): RFC 3339 time or epoch ms; a date
    /// (YYYY-MM-DD) takes in that whole day.
    #[arg(long, value_parser = parse_through)]
    to: Option<i64>,
    /// Output file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// SYMBOL/TIMEFRAME, e.g. BTCUSDT/1m.
    name: String,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Debug, Args)]
// `--volatility -1` is a value to refuse, not an unknown option.
#[command(allow_negative_numbers = true)]
pub struct SynthArgs {
    /// Symbol the series is meant for (recorded in the log only; the CSV
    /// layout has no symbol column).
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// Candle timeframe.
    #[arg(long, default_value = "1m")]
    timeframe: Timeframe,
    /// Number of candles.
    #[arg(long)]
    count: usize,
    /// Seed of the random walk: the same seed makes the same candles.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Price of the first candle.
    #[arg(long, default_value_t = 100.0)]
    start_price: f64,
    /// Standard deviation of the log return per candle.
    #[arg(long, default_value_t = 0.001)]
    volatility: f64,
    /// Open time of the first candle, epoch milliseconds.
    #[arg(long, default_value_t = 1_704_067_200_000)]
    start_ts: i64,
}

pub fn run(command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Synth(args) => synth(args),
        DataCommand::Import(args) => import(args),
        DataCommand::Download(args) => super::download::run(args),
        DataCommand::List(args) => list(args),
        DataCommand::Export(args) => export(args),
        DataCommand::Delete(args) => {
            let key = DataSetKey::parse(&args.name)?;
            DataSets::new(&args.data.data_dir).delete(&key)?;
            println!("deleted {key}");
            Ok(())
        }
    }
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let key = DataSetKey::new(&args.symbol, args.timeframe)?;
    let started = std::time::Instant::now();
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let candles = parse_candles(bytes, key.timeframe)
        .with_context(|| format!("{} is refused", args.file.display()))?;
    let info = DataSets::new(&args.data.data_dir)
        .save(&key, &candles)
        .with_context(|| format!("{} is refused", args.file.display()))?;
    println!(
        "imported {key}: {} candles in {:.0} ms",
        info.count,
        started.elapsed().as_secs_f64() * 1e3
    );
    print_info(&info);
    Ok(())
}

fn list(args: DataDirArg) -> anyhow::Result<()> {
    let sets = DataSets::new(&args.data_dir).list()?;
    if sets.is_empty() {
        println!("no data sets in {}", args.data_dir.display());
    }
    for info in &sets {
        print_info(info);
    }
    Ok(())
}

fn print_info(info: &DataSetInfo) {
    println!(
        "{:<20} {:>10} candles  {} .. {}  {} gaps ({} candles missing)  {}  sha256 {}",
        info.key().to_string(),
        info.count,
        time_text(info.first_ts),
        time_text(info.last_ts),
        info.gaps.count,
        info.gaps.missing,
        bytes_text(info.size_bytes),
        &info.content_hash[..16],
    );
}

/// `bytes` in the largest binary unit it reaches (812 B, 12.3 KiB, 4.5 MiB).
fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let key = DataSetKey::parse(&args.name)?;
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        anyhow::bail!("--from must not be after --to");
    }
    let candles = DataSets::new(&args.data.data_dir).load_range(&key, args.from, args.to)?;
    match &args.out {
        Some(path) => {
            write_csv_file(path, &candles)?;
            eprintln!("{} candles written to {}", candles.len(), path.display());
        }
        None => write_candles(std::io::stdout().lock(), &candles)?,
    }
    Ok(())
}

/// Candles as our CSV in a new file at `path`.
pub(super) fn write_csv_file(
    path: &std::path::Path,
    candles: &[stratbox_host::domain::Candle],
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    write_candles(std::io::BufWriter::new(file), candles)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn synth(args: SynthArgs) -> anyhow::Result<()> {
    // The file is meant for a data set: what `data import` would refuse is
    // refused here, before anything is written.
    DataSetKey::new(&args.symbol, args.timeframe)
        .map_err(|error| anyhow::anyhow!("--symbol: {error}"))?;
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    // Prices are cents (a 0.01 tick): below one, every candle is one cent.
    anyhow::ensure!(
        args.start_price.is_finite() && args.start_price >= 0.01,
        "--start-price must be at least 0.01 (prices move in steps of 0.01)"
    );
    // Candles of a day or less open on their grid from 1970; longer ones
    // (a week opens on a Monday, 1970-01-01 was a Thursday) are not checked.
    let step = args.timeframe.millis();
    anyhow::ensure!(
        step > 86_400_000 || args.start_ts.rem_euclid(step) == 0,
        "--start-ts must be the open time of a {} candle (a multiple of {step} ms)",
        args.timeframe
    );
    anyhow::ensure!(
        (0..=MAX_CANDLE_TS).contains(&args.start_ts),
        "--start-ts must be between 1970 and 9999 (epoch milliseconds)"
    );
    let last = i64::try_from(args.count - 1)
        .ok()
        .and_then(|candles| candles.checked_mul(step))
        .and_then(|span| args.start_ts.checked_add(span));
    anyhow::ensure!(
        last.is_some_and(|last| last <= MAX_CANDLE_TS),
        "--count: {} {} candles from --start-ts run past 9999",
        args.count,
        args.timeframe
    );
    anyhow::ensure!(
        args.volatility.is_finite() && (0.0..1.0).contains(&args.volatility),
        "--volatility must be at least 0 and below 1"
    );
    let params = SynthParams {
        timeframe: args.timeframe,
        start_ts: args.start_ts,
        start_price: args.start_price,
        volatility: args.volatility,
        ..SynthParams::new(args.count, args.seed)
    };
    let candles = synthesize(&params);
    write_csv_file(&args.out, &candles)?;
    tracing::info!(
        symbol = args.symbol,
        count = candles.len(),
        "candles written"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bytes_text;

    #[test]
    fn sizes_read_in_the_unit_they_reach() {
        assert_eq!(bytes_text(812), "812 B");
        assert_eq!(bytes_text(12_595), "12.3 KiB");
        assert_eq!(bytes_text(4_718_592), "4.5 MiB");
    }
}
