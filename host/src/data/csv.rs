//! Candle CSV files.
//!
//! Two layouts are read, told apart by the first line:
//! - ours: a header `ts,open,high,low,close,volume`, `ts` the open time in
//!   epoch milliseconds;
//! - Binance klines: 12 columns and no header (open time, open, high, low,
//!   close, volume, close time, quote volume, trades, taker base volume,
//!   taker quote volume, ignore). The open time is in milliseconds, or in
//!   microseconds as Binance's spot files use from 2025; both are accepted.
//!
//! Every row is checked (numbers, OHLC relations, strictly rising time) and
//! a bad row is reported with its line number.

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use crate::domain::{Candle, Timeframe};

const HEADER: [&str; 6] = ["ts", "open", "high", "low", "close", "volume"];
const BINANCE_COLUMNS: usize = 12;
/// Open times above this are microseconds: 10^14 ms is the year 5138.
const MICROSECONDS_THRESHOLD: i64 = 100_000_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum CandleFileError {
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
    #[error("the file has no candles")]
    Empty,
}

fn row_error(line: u64, reason: impl Into<String>) -> CandleFileError {
    CandleFileError::Row {
        line,
        reason: reason.into(),
    }
}

/// Read every candle of a CSV file.
pub fn read_candles(path: &Path) -> Result<Vec<Candle>, CandleFileError> {
    let file = std::fs::File::open(path).map_err(|error| CandleFileError::Io {
        path: path.display().to_string(),
        error,
    })?;
    read_candles_from(std::io::BufReader::with_capacity(1 << 20, file))
}

/// Read every candle of CSV text from any reader.
pub fn read_candles_from(reader: impl Read) -> Result<Vec<Candle>, CandleFileError> {
    read_series_from(reader, None)
}

/// Read every candle of CSV text from any reader; with a `timeframe`, each
/// must also open a whole number of its candles after the one before, so a
/// file that breaks that is refused at the line that does.
pub fn read_series_from(
    reader: impl Read,
    timeframe: Option<Timeframe>,
) -> Result<Vec<Candle>, CandleFileError> {
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(reader);
    let mut record = ::csv::StringRecord::new();
    let mut candles = Vec::new();
    let mut layout = None;
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => return Err(row_error(line, err.to_string())),
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let layout = *layout.get_or_insert_with(|| Layout::detect(&record));
        if layout == Layout::Ours && record.iter().eq(HEADER) {
            continue;
        }
        let candle = layout
            .parse(&record)
            .map_err(|reason| row_error(line, reason))?;
        let previous = candles.last().map(|c: &Candle| c.ts);
        super::series::check_next(previous, &candle).map_err(|reason| row_error(line, reason))?;
        if let (Some(previous), Some(timeframe)) = (previous, timeframe) {
            super::series::missing_between(previous, candle.ts, timeframe)
                .map_err(|reason| row_error(line, reason))?;
        }
        candles.push(candle);
    }
    if candles.is_empty() {
        return Err(CandleFileError::Empty);
    }
    Ok(candles)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Ours,
    Binance,
}

impl Layout {
    fn detect(first: &::csv::StringRecord) -> Self {
        if first.len() == BINANCE_COLUMNS && first.get(0).is_some_and(|f| f.parse::<i64>().is_ok())
        {
            Layout::Binance
        } else {
            Layout::Ours
        }
    }

    fn parse(self, record: &::csv::StringRecord) -> Result<Candle, String> {
        let expected = match self {
            Layout::Ours => HEADER.len(),
            Layout::Binance => BINANCE_COLUMNS,
        };
        if record.len() != expected {
            return Err(match self {
                Layout::Ours => format!(
                    "expected 6 columns (ts,open,high,low,close,volume), found {}",
                    record.len()
                ),
                Layout::Binance => format!(
                    "expected 12 columns (Binance kline layout), found {}",
                    record.len()
                ),
            });
        }
        let mut ts: i64 = field(record, 0, "ts")?;
        if self == Layout::Binance && ts >= MICROSECONDS_THRESHOLD {
            ts /= 1000;
        }
        Ok(Candle {
            ts,
            open: field(record, 1, "open")?,
            high: field(record, 2, "high")?,
            low: field(record, 3, "low")?,
            close: field(record, 4, "close")?,
            volume: field(record, 5, "volume")?,
        })
    }
}

fn field<T: FromStr>(record: &::csv::StringRecord, index: usize, name: &str) -> Result<T, String> {
    let text = record.get(index).unwrap_or_default();
    text.parse().map_err(|_| {
        // Digits too many for the column are a number, just not one it holds.
        let digits = text.trim().trim_start_matches(['-', '+']);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            format!("{name} `{text}` is out of range")
        } else {
            format!("{name} `{text}` is not a number")
        }
    })
}

/// Write candles in our layout.
pub fn write_candles(out: impl Write, candles: &[Candle]) -> std::io::Result<()> {
    append_candles(out, candles, true)
}

/// Write candles in our layout, with the header line only when asked (to
/// add rows to a file that has it).
pub fn append_candles(out: impl Write, candles: &[Candle], header: bool) -> std::io::Result<()> {
    let mut csv = ::csv::Writer::from_writer(out);
    if header {
        csv.write_record(HEADER)?;
    }
    for c in candles {
        csv.write_record(&[
            c.ts.to_string(),
            c.open.to_string(),
            c.high.to_string(),
            c.low.to_string(),
            c.close.to_string(),
            c.volume.to_string(),
        ])?;
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn read(text: &str) -> Result<Vec<Candle>, CandleFileError> {
        read_candles_from(text.as_bytes())
    }

    #[test]
    fn reads_our_layout() {
        let candles =
            read("ts,open,high,low,close,volume\n1000,10,12,9,11,5\n61000,11,11.5,10.5,11,0\n")
                .unwrap();
        assert_eq!(candles.len(), 2);
        assert_eq!(candles[0].close, dec!(11));
        assert_eq!(candles[1].ts, 61000);
    }

    #[test]
    fn reads_binance_klines_in_ms_and_us() {
        let ms = "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704067259999,53957248.97,47134,682.57581,28957416.82,0\n";
        let us = "1735689600000000,93576.00,93610.93,93537.50,93610.93,8.21827,1735689659999999,768978.40,1346,4.25,397599.34,0\n";
        assert_eq!(read(ms).unwrap()[0].ts, 1_704_067_200_000);
        let candle = read(us).unwrap()[0];
        assert_eq!(candle.ts, 1_735_689_600_000);
        assert_eq!(candle.high, dec!(93610.93));
    }

    #[test]
    fn bad_rows_name_their_line() {
        let err = read("ts,open,high,low,close,volume\n1000,10,12,9,11,5\n2000,10,abc,9,11,5\n")
            .unwrap_err();
        assert_eq!(err.to_string(), "line 3: high `abc` is not a number");
        let huge =
            read("ts,open,high,low,close,volume\n99999999999999999999,1,1,1,1,1\n").unwrap_err();
        assert_eq!(
            huge.to_string(),
            "line 2: ts `99999999999999999999` is out of range"
        );
        let err = read("ts,open,high,low,close,volume\n1000,10,9,8,11,5\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: high 9 is below max(open, close)");
        let err = read("ts,open,high,low,close,volume\n2000,10,12,9,11,5\n1000,10,12,9,11,5\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: time 1000 is not after the previous candle's 2000"
        );
        let err = read("ts,open,high,low,close,volume\n1000,10,12\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: expected 6 columns"));
        assert!(matches!(
            read("ts,open,high,low,close,volume\n"),
            Err(CandleFileError::Empty)
        ));
    }

    #[test]
    fn written_files_read_back() {
        let candles = read("ts,open,high,low,close,volume\n1000,10,12,9,11,5\n").unwrap();
        let mut out = Vec::new();
        write_candles(&mut out, &candles).unwrap();
        assert_eq!(read(std::str::from_utf8(&out).unwrap()).unwrap(), candles);
    }
}
