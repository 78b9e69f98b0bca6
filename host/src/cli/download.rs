//! `stratbox data download`: Binance kline history into a data set (or a
//! CSV file), paged, paced by the weight headers, resumable.
//!
//! Pages are appended to a part file as they arrive (`<out>.part`, or
//! `downloads/SYMBOL-TF-FROM-TO.csv` in the data directory); a download
//! started again with the same arguments reads it and goes on after its
//! last candle. The part file is removed once the result is saved.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use stratbox_host::data::{DataSetKey, DataSets, append_candles, read_candles};
use stratbox_host::domain::{Candle, Timeframe};
use stratbox_host::exchange::binance::{DownloadProgress, RestClient, download};

use super::data::DataDirArg;
use stratbox_host::domain::{parse_instant, parse_through};

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Binance symbol, e.g. BTCUSDT.
    #[arg(long)]
    symbol: String,
    /// Kline interval: 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d or 1w.
    #[arg(long)]
    timeframe: Timeframe,
    /// First candle: RFC 3339 time, a date (YYYY-MM-DD), or epoch ms.
    #[arg(long, value_parser = parse_instant)]
    from: i64,
    /// Last candle (inclusive): RFC 3339 time or epoch ms; a date
    /// (YYYY-MM-DD) takes in that whole day. Default: the last closed one.
    #[arg(long, value_parser = parse_through)]
    to: Option<i64>,
    /// Binance REST base URL (without /api): the public market data
    /// deployment by default; https://api.binance.com or
    /// https://testnet.binance.vision also work.
    #[arg(long, default_value = "https://data-api.binance.vision")]
    base_url: String,
    /// Write a candle CSV here instead of storing a data set.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
}

/// Where the pages of this download are kept until it is done: the name
/// carries a digest of everything that decides its candles (symbol,
/// timeframe, range, where from), so only the same download resumes from it.
fn part_path(args: &DownloadArgs, key: &DataSetKey, to: i64) -> PathBuf {
    use sha2::Digest;
    let what = format!(
        "{}|{}|{}|{to}|{}",
        key.symbol,
        key.timeframe.name(),
        args.from,
        args.base_url.trim_end_matches('/')
    );
    let digest = sha2::Sha256::digest(what.as_bytes());
    let tag: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    match &args.out {
        Some(out) => {
            let mut name = out.as_os_str().to_owned();
            name.push(format!(".{tag}.part"));
            PathBuf::from(name)
        }
        None => args.data.data_dir.join("downloads").join(format!(
            "{}-{}-{tag}.csv",
            key.symbol,
            key.timeframe.name()
        )),
    }
}

/// What an earlier, interrupted run of the same download kept. A last
/// line cut short by the interruption is dropped (it could still parse).
fn resume(part: &Path) -> Vec<Candle> {
    let Ok(mut bytes) = std::fs::read(part) else {
        return Vec::new();
    };
    if !bytes.ends_with(b"\n") {
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(whole);
        if std::fs::write(part, &bytes).is_err() {
            return Vec::new();
        }
    }
    match read_candles(part) {
        Ok(candles) => candles,
        Err(error) => {
            eprintln!(
                "starting over: the part file {} is unreadable ({error})",
                part.display()
            );
            Vec::new()
        }
    }
}

pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let key = DataSetKey::new(&args.symbol, args.timeframe)?;
    let to = args.to.unwrap_or(i64::MAX / 2);
    anyhow::ensure!(args.from <= to, "--from is after --to");
    let base = reqwest::Url::parse(&args.base_url).ok();
    anyhow::ensure!(
        base.is_some_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host()),
        "--base-url: `{}` is not an http(s) address, such as https://data-api.binance.vision",
        args.base_url
    );
    let part = part_path(&args, &key, to);
    let mut candles = resume(&part);
    let step = args.timeframe.millis();
    let start = candles.last().map_or(args.from, |last| last.ts + step);
    if !candles.is_empty() {
        eprintln!(
            "resuming after {} candles kept in {}",
            candles.len(),
            part.display()
        );
    }
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .with_context(|| format!("cannot open {}", part.display()))?;
    if candles.is_empty() {
        file.set_len(0)?;
        append_candles(&mut file, &[], true)?;
    }
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} candles, {per_sec}, about {eta} left",
        )
        .expect("a valid template"),
    );
    let client = RestClient::new(&args.base_url);
    let started = Instant::now();
    let resumed = candles.len();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let fetched = runtime.block_on(download(
        &client,
        &key.symbol,
        args.timeframe,
        start,
        to,
        |page| {
            append_candles(&mut file, page, false)
                .and_then(|()| file.flush())
                .map_err(|error| format!("{}: {error}", part.display()))?;
            candles.extend_from_slice(page);
            Ok(())
        },
        |DownloadProgress { fetched, expected }| {
            bar.set_length(expected);
            bar.set_position(fetched);
        },
    ));
    bar.finish_and_clear();
    let fetched = fetched.with_context(|| {
        format!(
            "the download stopped; run the same command again to resume ({} candles kept)",
            candles.len()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    match &args.out {
        Some(out) => {
            super::data::write_csv_file(out, &candles)?;
            println!("{} candles written to {}", candles.len(), out.display());
        }
        None => {
            anyhow::ensure!(!candles.is_empty(), "Binance has no candles in that range");
            let info = DataSets::new(&args.data.data_dir).save(&key, &candles)?;
            println!(
                "stored {key}: {} candles, {} gaps ({} candles missing)",
                info.count, info.gaps.count, info.gaps.missing
            );
        }
    }
    let _ = std::fs::remove_file(&part);
    println!(
        "downloaded {fetched} candles in {seconds:.1} s ({:.0} candles/s){}",
        fetched as f64 / seconds.max(1e-9),
        if resumed > 0 {
            format!(", {resumed} resumed from the part file")
        } else {
            String::new()
        }
    );
    Ok(())
}
