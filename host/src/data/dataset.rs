//! Stored data sets: the candles of one symbol and timeframe, kept in the
//! data directory as one Arrow IPC file each (`datasets/SYMBOL_TF.arrow`),
//! loaded without parsing text. A data set is checked when it is saved
//! (valid candles, strictly rising and whole timeframes apart; gaps are
//! counted, not refused) and written to a temporary file that replaces the
//! old one only once complete, so a failed import stores nothing.
//!
//! Each file carries its own description in the Arrow schema's metadata
//! (symbol, timeframe, range, count, gaps, content hash), so listing reads
//! only the files' footers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::arrow::{
    ArrowCandleError, ArrowWriteError, CandleColumns, read_arrow_columns, write_arrow,
};
use super::series::{Gaps, check_series};
use crate::domain::{Candle, CandleSeries, Timeframe};

/// The folder of the data directory that holds data sets.
const FOLDER: &str = "datasets";
const EXTENSION: &str = "arrow";
/// Longest symbol accepted.
const MAX_SYMBOL: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum DataSetError {
    #[error(
        "`{0}` is not a symbol: 1 to {MAX_SYMBOL} of A-Z, 0-9, `.` and `-`, starting with a letter or digit"
    )]
    BadSymbol(String),
    #[error("`{0}` does not name a data set: expected SYMBOL/TIMEFRAME, like BTCUSDT/1m")]
    BadName(String),
    #[error(transparent)]
    BadTimeframe(#[from] crate::domain::TimeframeError),
    #[error("no data set {0}")]
    NotFound(DataSetKey),
    #[error("candle {row}: {reason}")]
    Row { row: u64, reason: String },
    #[error("the data set has no candles")]
    Empty,
    #[error("data set {key} cannot be read: {reason}")]
    Unreadable { key: String, reason: String },
    #[error("data set storage: {0}")]
    Io(#[from] std::io::Error),
}

/// Which data set: a symbol and a timeframe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataSetKey {
    pub symbol: String,
    pub timeframe: Timeframe,
}

impl DataSetKey {
    pub fn new(symbol: &str, timeframe: Timeframe) -> Result<Self, DataSetError> {
        let well_formed = !symbol.is_empty()
            && symbol.len() <= MAX_SYMBOL
            && symbol.starts_with(|c: char| c.is_ascii_alphanumeric())
            && symbol
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !well_formed {
            return Err(DataSetError::BadSymbol(symbol.to_string()));
        }
        Ok(Self {
            symbol: symbol.to_string(),
            timeframe,
        })
    }

    /// `SYMBOL/TIMEFRAME`, as the CLI and the API name a data set.
    pub fn parse(name: &str) -> Result<Self, DataSetError> {
        let (symbol, timeframe) = name
            .split_once('/')
            .ok_or_else(|| DataSetError::BadName(name.to_string()))?;
        Self::new(symbol, timeframe.parse()?)
    }

    fn file_name(&self) -> String {
        format!("{}_{}.{EXTENSION}", self.symbol, self.timeframe)
    }
}

impl fmt::Display for DataSetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.symbol, self.timeframe)
    }
}

/// What a data set holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSetInfo {
    pub symbol: String,
    pub timeframe: Timeframe,
    /// Open time of the first and the last candle, epoch milliseconds.
    pub first_ts: i64,
    pub last_ts: i64,
    pub count: u64,
    pub gaps: Gaps,
    /// Bytes on disk.
    #[serde(default)]
    pub size_bytes: u64,
    /// SHA-256 of the candles (see [`content_hash`]): equal for equal
    /// candles, whatever file they came from.
    pub content_hash: String,
}

impl DataSetInfo {
    pub fn key(&self) -> DataSetKey {
        DataSetKey {
            symbol: self.symbol.clone(),
            timeframe: self.timeframe,
        }
    }
}

/// SHA-256 over the candles' open times and values (trailing zeros of a
/// decimal do not count), hex.
pub fn content_hash(candles: &[Candle]) -> String {
    let mut hash = Sha256::new();
    for candle in candles {
        hash.update(candle.ts.to_le_bytes());
        for value in [
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
        ] {
            hash.update(value.normalize().serialize());
        }
    }
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The data sets of one data directory.
#[derive(Debug, Clone)]
pub struct DataSets {
    dir: PathBuf,
}

impl DataSets {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(FOLDER),
        }
    }

    fn path(&self, key: &DataSetKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// Check `candles` as `key`'s series and store them, replacing what
    /// `key` held; nothing changes if they are refused or the write fails.
    pub fn save(&self, key: &DataSetKey, candles: &[Candle]) -> Result<DataSetInfo, DataSetError> {
        let (Some(first), Some(last)) = (candles.first(), candles.last()) else {
            return Err(DataSetError::Empty);
        };
        let gaps =
            check_series(candles, key.timeframe).map_err(|(index, reason)| DataSetError::Row {
                row: index as u64 + 1,
                reason,
            })?;
        let mut info = DataSetInfo {
            symbol: key.symbol.clone(),
            timeframe: key.timeframe,
            first_ts: first.ts,
            last_ts: last.ts,
            count: candles.len() as u64,
            gaps,
            size_bytes: 0,
            content_hash: content_hash(candles),
        };
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        // A name of its own, so that two saves of one data set never write
        // the same file; the last rename wins, whole.
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let save = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial =
            path.with_extension(format!("{EXTENSION}.{}-{save}.partial", std::process::id()));
        let written = (|| -> Result<(), DataSetError> {
            let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
            write_arrow(&mut file, candles, metadata(&info)).map_err(|error| match error {
                // The candles' fault, not the storage's.
                ArrowWriteError::TooManyDigits { index, .. } => DataSetError::Row {
                    row: index as u64 + 1,
                    reason: error.to_string(),
                },
                ArrowWriteError::Arrow(error) => std::io::Error::other(error.to_string()).into(),
            })?;
            let file = file.into_inner().map_err(|error| error.into_error())?;
            file.sync_all()?;
            Ok(std::fs::rename(&partial, &path)?)
        })();
        if let Err(error) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
        info.size_bytes = std::fs::metadata(&path)?.len();
        Ok(info)
    }

    /// Every data set, by symbol then timeframe.
    pub fn list(&self) -> Result<Vec<DataSetInfo>, DataSetError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        let mut sets = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == EXTENSION) {
                match describe(&path) {
                    Ok(info) => sets.push(info),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "skipping a data set file")
                    }
                }
            }
        }
        sets.sort_by(|a, b| {
            (a.symbol.as_str(), a.timeframe.millis())
                .cmp(&(b.symbol.as_str(), b.timeframe.millis()))
        });
        Ok(sets)
    }

    /// What `key` holds.
    pub fn info(&self, key: &DataSetKey) -> Result<DataSetInfo, DataSetError> {
        let path = self.path(key);
        if !path.exists() {
            return Err(DataSetError::NotFound(key.clone()));
        }
        describe(&path)
    }

    /// The candles of `key` where they lie: the file mapped into memory
    /// (no copy, no parsing), each candle built from its columns when it is
    /// asked for. What a backtest reads.
    pub fn open(&self, key: &DataSetKey) -> Result<CandleColumns, DataSetError> {
        let file = match std::fs::File::open(self.path(key)) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(DataSetError::NotFound(key.clone()));
            }
            Err(error) => return Err(error.into()),
        };
        // SAFETY: a data set file is never written in place: `save` writes
        // a new file and renames it over the old one, so the bytes mapped
        // here stay as they are while the mapping lives. (Populated: a
        // backtest reads the whole file, so its pages are mapped in one
        // call rather than one fault each.)
        let mapped = unsafe { memmap2::MmapOptions::new().populate().map(&file) }?;
        let buffer = arrow_buffer::Buffer::from(bytes::Bytes::from_owner(mapped));
        read_arrow_columns(buffer).map_err(|error| unreadable(key, error))
    }

    /// Every candle of `key`, in memory.
    pub fn load(&self, key: &DataSetKey) -> Result<Vec<Candle>, DataSetError> {
        Ok(self.open(key)?.to_vec())
    }

    /// The candles of `key` with open times in `[from, to]` (either bound
    /// optional, epoch milliseconds).
    pub fn load_range(
        &self,
        key: &DataSetKey,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<Candle>, DataSetError> {
        let columns = self.open(key)?;
        let start = from.map_or(0, |from| columns.first_from(from));
        let end = to.map_or(columns.len(), |to| columns.first_from(to.saturating_add(1)));
        Ok((start..end.max(start))
            .map(|index| columns.candle(index))
            .collect())
    }

    /// Remove `key`.
    pub fn delete(&self, key: &DataSetKey) -> Result<(), DataSetError> {
        match std::fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(DataSetError::NotFound(key.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }
}

fn unreadable(key: &DataSetKey, error: ArrowCandleError) -> DataSetError {
    DataSetError::Unreadable {
        key: key.to_string(),
        reason: error.to_string(),
    }
}

/// The description a data set file carries.
fn metadata(info: &DataSetInfo) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "stratbox.dataset".to_string(),
        serde_json::to_string(info).expect("a data set description serialises"),
    );
    metadata
}

/// A data set file's description, read from its footer.
fn describe(path: &Path) -> Result<DataSetInfo, DataSetError> {
    let unreadable = |reason: String| DataSetError::Unreadable {
        key: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path)?;
    let size_bytes = file.metadata()?.len();
    let reader = arrow_ipc::reader::FileReader::try_new(std::io::BufReader::new(file), None)
        .map_err(|error| unreadable(error.to_string()))?;
    let text = reader
        .schema()
        .metadata()
        .get("stratbox.dataset")
        .cloned()
        .ok_or_else(|| unreadable("no stratbox.dataset metadata".into()))?;
    let mut info: DataSetInfo =
        serde_json::from_str(&text).map_err(|error| unreadable(error.to_string()))?;
    info.size_bytes = size_bytes;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{SynthParams, parse_candles, synthesize, write_candles};

    fn btc() -> DataSetKey {
        DataSetKey::parse("BTCUSDT/1m").unwrap()
    }

    #[test]
    fn a_data_set_loads_exactly_the_candles_its_csv_held() {
        let dir = tempfile::tempdir().unwrap();
        let sets = DataSets::new(dir.path());
        let candles = synthesize(&SynthParams::new(5_000, 7));
        let mut csv = Vec::new();
        write_candles(&mut csv, &candles).unwrap();
        let imported = parse_candles(csv, btc().timeframe).unwrap();
        let info = sets.save(&btc(), &imported).unwrap();
        let loaded = sets.load(&btc()).unwrap();
        assert_eq!(loaded, candles);
        // Same values and the same text, so reports read the same.
        assert_eq!(loaded[17].close.to_string(), candles[17].close.to_string());
        assert_eq!(info.count, 5_000);
        assert_eq!(
            (info.first_ts, info.last_ts),
            (candles[0].ts, candles[4_999].ts)
        );
        assert_eq!(info.gaps, Gaps::default());
        assert_eq!(info.content_hash, content_hash(&candles));
        assert_eq!(sets.list().unwrap(), vec![info.clone()]);
        assert_eq!(sets.info(&btc()).unwrap(), info);
        let range = sets
            .load_range(&btc(), Some(candles[10].ts), Some(candles[19].ts))
            .unwrap();
        assert_eq!(range, candles[10..20]);
    }

    #[test]
    fn gaps_are_counted_and_bad_rows_refused_with_nothing_stored() {
        let dir = tempfile::tempdir().unwrap();
        let sets = DataSets::new(dir.path());
        let mut candles = synthesize(&SynthParams::new(100, 1));
        candles.drain(10..13);
        let info = sets.save(&btc(), &candles).unwrap();
        assert_eq!((info.gaps.count, info.gaps.missing), (1, 3));
        assert_eq!(info.gaps.first[0].after_ts, candles[9].ts);

        let mut unordered = synthesize(&SynthParams::new(100, 2));
        unordered.swap(40, 41);
        match sets.save(&btc(), &unordered) {
            Err(DataSetError::Row { row: 42, reason }) => {
                assert!(reason.contains("not after"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let mut off_grid = synthesize(&SynthParams::new(100, 3));
        off_grid[50].ts += 1;
        assert!(matches!(
            sets.save(&btc(), &off_grid),
            Err(DataSetError::Row { row: 51, .. })
        ));
        // 5m candles stored as 1m ones: every candle a gap, refused.
        let every_fifth: Vec<Candle> = synthesize(&SynthParams::new(100, 4))
            .into_iter()
            .step_by(5)
            .collect();
        match sets.save(&btc(), &every_fifth) {
            Err(DataSetError::Row { row: 2, reason }) => assert!(
                reason.contains("no two candles are one 1m apart (the closest two are 5m apart)"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        // A value too fine for the column's other values to be stored
        // beside it exactly: refused at its candle.
        let mut too_fine = synthesize(&SynthParams::new(100, 5));
        too_fine[7].volume = rust_decimal::Decimal::new(1, 28);
        too_fine[3].volume = rust_decimal::Decimal::from(10_000_000_000_u64);
        match sets.save(&btc(), &too_fine) {
            Err(DataSetError::Row { row: 4, reason }) => {
                assert!(
                    reason.contains(
                        "`volume` 10000000000 needs more than 38 digits at the 28 decimal places \
                         of the column's finest value, 0.0000000000000000000000000001 (candle 8)"
                    ),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        // The first data set is still there, unchanged; no partial file.
        assert_eq!(sets.load(&btc()).unwrap(), candles);
        let files: Vec<_> = std::fs::read_dir(dir.path().join(FOLDER))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        sets.delete(&btc()).unwrap();
        assert!(matches!(sets.load(&btc()), Err(DataSetError::NotFound(_))));
        assert!(sets.list().unwrap().is_empty());
    }

    #[test]
    fn names_are_checked() {
        assert!(DataSetKey::parse("BTCUSDT").is_err());
        assert!(DataSetKey::parse("../etc/1m").is_err());
        assert!(DataSetKey::parse("btcusdt/1m").is_err());
        assert!(DataSetKey::parse("BTCUSDT/7m").is_err());
        assert_eq!(
            DataSetKey::parse("ETH-USD/4h").unwrap().to_string(),
            "ETH-USD/4h"
        );
    }
}
