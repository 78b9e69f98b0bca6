//! `stratbox data ...`: candle data commands.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use stratbox_host::data::{SynthParams, synthesize, write_candles};
use stratbox_host::domain::Timeframe;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write reproducible synthetic candles (geometric Brownian motion) as CSV.
    Synth(SynthArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Symbol the series is meant for (recorded in the log only; the CSV
    /// layout has no symbol column).
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    #[arg(long, default_value = "1m")]
    timeframe: Timeframe,
    /// Number of candles.
    #[arg(long)]
    count: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
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
    }
}

fn synth(args: SynthArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.start_price.is_finite() && args.start_price > 0.0,
        "--start-price must be a positive number"
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
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_candles(std::io::BufWriter::new(file), &candles)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    tracing::info!(
        symbol = args.symbol,
        count = candles.len(),
        "candles written"
    );
    Ok(())
}
