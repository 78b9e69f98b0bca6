//! Candles as Arrow IPC files (Feather v2): the stored form of a data set,
//! and one of the formats imported.
//!
//! Written: columns `ts` (timestamp, milliseconds, UTC) and `open`, `high`,
//! `low`, `close`, `volume` as Arrow decimals (`Decimal64(18, s)`, or
//! `Decimal128(38, s)` when a value needs more digits or the scale is finer
//! than 18 places), each column with the largest scale of its values, so
//! every value is stored exactly. pandas,
//! polars and pyarrow open these files as they are.
//!
//! Read: any Arrow IPC file with a time column (`ts`, `date`, `open_time`
//! or `timestamp`; a timestamp of any unit or integer milliseconds) and the
//! five price columns as decimals, floats, integers or decimal strings, as
//! Freqtrade keeps its candles (float64, lz4-compressed). Floats become
//! the shortest decimal that reads back as the same float.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal64Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{
    Array, ArrayRef, Decimal64Array, Decimal128Array, RecordBatch, TimestampMillisecondArray,
};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_ipc::reader::FileDecoder;
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use rust_decimal::Decimal;

use crate::domain::{Candle, CandleSeries};

/// The price columns, in candle order.
const PRICE_COLUMNS: [&str; 5] = ["open", "high", "low", "close", "volume"];
/// Names a time column may have.
const TIME_COLUMNS: [&str; 4] = ["ts", "date", "open_time", "timestamp"];
/// Rows per record batch written.
const BATCH_ROWS: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArrowCandleError {
    #[error("not an Arrow IPC (Feather v2) file: {0}")]
    Format(String),
    #[error("no `{0}` column")]
    MissingColumn(String),
    #[error("column `{column}` is {found}; expected {expected}")]
    ColumnType {
        column: String,
        found: String,
        expected: &'static str,
    },
    #[error("row {row}: {reason}")]
    Row { row: u64, reason: String },
    #[error("the file has no candles")]
    Empty,
}

/// Why candles could not be written as a file.
#[derive(Debug, thiserror::Error)]
pub enum ArrowWriteError {
    /// A value the stored column cannot hold exactly beside its finest
    /// one: the candles' fault.
    #[error(
        "`{column}` {value} needs more than 38 digits at the {} decimal places of the column's finest value, {finest} (candle {})",
        finest.scale(),
        finest_index + 1
    )]
    TooManyDigits {
        /// Index of the candle, from 0.
        index: usize,
        column: &'static str,
        value: Decimal,
        /// The value that sets the column's scale, and its candle's index.
        finest: Decimal,
        finest_index: usize,
    },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

impl From<ArrowError> for ArrowCandleError {
    fn from(error: ArrowError) -> Self {
        ArrowCandleError::Format(error.to_string())
    }
}

/// Write `candles` as an Arrow IPC file with `metadata` in its schema.
pub fn write_arrow(
    out: impl Write,
    candles: &[Candle],
    metadata: BTreeMap<String, String>,
) -> Result<(), ArrowWriteError> {
    write_arrow_batches(out, candles, metadata, BATCH_ROWS)
}

/// [`write_arrow`], `batch_rows` candles per record batch.
fn write_arrow_batches(
    out: impl Write,
    candles: &[Candle],
    metadata: BTreeMap<String, String>,
    batch_rows: usize,
) -> Result<(), ArrowWriteError> {
    let prices: Vec<ArrayRef> = (0..PRICE_COLUMNS.len())
        .map(|column| decimal_column(candles, column))
        .collect::<Result<_, _>>()?;
    let mut fields = vec![Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    )];
    for (name, array) in PRICE_COLUMNS.iter().zip(&prices) {
        fields.push(Field::new(*name, array.data_type().clone(), false));
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
    let mut writer = arrow_ipc::writer::FileWriter::try_new(out, &schema)?;
    for (start, chunk) in (0..).step_by(batch_rows).zip(candles.chunks(batch_rows)) {
        let ts = TimestampMillisecondArray::from_iter_values(chunk.iter().map(|c| c.ts))
            .with_timezone("UTC");
        let mut columns: Vec<ArrayRef> = vec![Arc::new(ts)];
        columns.extend(prices.iter().map(|p| p.slice(start, chunk.len())));
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    Ok(writer.finish()?)
}

fn price(candle: &Candle, column: usize) -> Decimal {
    match column {
        0 => candle.open,
        1 => candle.high,
        2 => candle.low,
        3 => candle.close,
        _ => candle.volume,
    }
}

/// One price column at the largest scale of its values: 64-bit mantissas
/// when they all fit, else 128-bit.
/// A column finer than 18 places is 128-bit too: `Decimal64` has 18 digits
/// in all. A value that would need more than 38 digits at the column's
/// scale is refused.
fn decimal_column(candles: &[Candle], column: usize) -> Result<ArrayRef, ArrowWriteError> {
    let (finest_index, finest) = candles
        .iter()
        .map(|c| price(c, column))
        .enumerate()
        .max_by_key(|(index, value)| (value.scale(), std::cmp::Reverse(*index)))
        .unwrap_or((0, Decimal::ZERO));
    let scale = finest.scale();
    // Every mantissa within the 38 digits of `Decimal128(38, s)`.
    let mantissas = candles
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let value = price(c, column);
            10i128
                .checked_pow(scale - value.scale())
                .and_then(|factor| value.mantissa().checked_mul(factor))
                .filter(|m| m.unsigned_abs() < 10u128.pow(38))
                .ok_or(ArrowWriteError::TooManyDigits {
                    index,
                    column: PRICE_COLUMNS[column],
                    value,
                    finest,
                    finest_index,
                })
        })
        .collect::<Result<Vec<i128>, _>>()?;
    // 18 digits at most in `Decimal64(18, s)`, so its scale is 18 at most.
    let narrow = (scale <= 18)
        .then(|| {
            mantissas
                .iter()
                .map(|&m| {
                    i64::try_from(m)
                        .ok()
                        .filter(|m| m.unsigned_abs() < 10u64.pow(18))
                })
                .collect::<Option<Vec<i64>>>()
        })
        .flatten();
    let scale = scale as i8;
    if let Some(narrow) = narrow {
        return Ok(Arc::new(
            Decimal64Array::from(narrow).with_precision_and_scale(18, scale)?,
        ));
    }
    Ok(Arc::new(
        Decimal128Array::from(mantissas).with_precision_and_scale(38, scale)?,
    ))
}

/// The candles of an Arrow IPC file held in `buffer` (bytes in memory or a
/// mapped file), every batch in order, in memory. Rows are not checked as
/// a series here (see [`super::check_series`]).
pub fn read_arrow(buffer: Buffer) -> Result<Vec<Candle>, ArrowCandleError> {
    Ok(read_arrow_columns(buffer)?.to_vec())
}

/// The candles of an Arrow IPC file held in `buffer`, read where they lie:
/// the arrays are not copied (our own files' columns are 64-bit decimals
/// and millisecond times, used as they are; other types, and our columns
/// finer than 18 places or too wide for 64 bits, are converted), and a
/// candle is built when it is asked for.
pub fn read_arrow_columns(buffer: Buffer) -> Result<CandleColumns, ArrowCandleError> {
    let malformed = |what: &str| ArrowCandleError::Format(what.to_string());
    let trailer_start = buffer
        .len()
        .checked_sub(10)
        .ok_or_else(|| malformed("too short"))?;
    let trailer: [u8; 10] = buffer[trailer_start..]
        .try_into()
        .map_err(|_| malformed("no trailer"))?;
    let footer_len = arrow_ipc::reader::read_footer_length(trailer)?;
    let footer_start = trailer_start
        .checked_sub(footer_len)
        .ok_or_else(|| malformed("the footer is longer than the file"))?;
    let footer = arrow_ipc::root_as_footer(&buffer[footer_start..trailer_start])
        .map_err(|error| ArrowCandleError::Format(error.to_string()))?;
    let schema = arrow_ipc::convert::try_fb_to_schema(
        footer.schema().ok_or_else(|| malformed("no schema"))?,
    )?;
    let mut decoder = FileDecoder::new(Arc::new(schema), footer.version());
    let block_bytes = |block: &arrow_ipc::Block| -> Result<Buffer, ArrowCandleError> {
        let length = usize::try_from(block.metaDataLength())
            .ok()
            .zip(usize::try_from(block.bodyLength()).ok())
            .and_then(|(meta, body)| meta.checked_add(body));
        let start = usize::try_from(block.offset()).ok();
        match start.zip(length) {
            Some((start, length))
                if start
                    .checked_add(length)
                    .is_some_and(|end| end <= footer_start) =>
            {
                Ok(buffer.slice_with_length(start, length))
            }
            _ => Err(malformed("a block lies outside the file")),
        }
    };
    for block in footer.dictionaries().iter().flatten() {
        decoder.read_dictionary(block, &block_bytes(block)?)?;
    }
    let mut columns = CandleColumns::default();
    for block in footer.recordBatches().iter().flatten() {
        if let Some(batch) = decoder.read_record_batch(block, &block_bytes(block)?)? {
            let batch = BatchColumns::of(&batch, columns.len as u64)?;
            if batch.ts.is_empty() {
                continue;
            }
            columns.starts.push(columns.len);
            columns.len += batch.ts.len();
            columns.batches.push(batch);
        }
    }
    if columns.len == 0 {
        return Err(ArrowCandleError::Empty);
    }
    Ok(columns)
}

/// The candles of a file, batch by batch, column by column.
#[derive(Default)]
pub struct CandleColumns {
    batches: Vec<BatchColumns>,
    /// The index of each batch's first candle.
    starts: Vec<usize>,
    len: usize,
}

impl CandleColumns {
    /// The batch holding candle `index`, and the row there.
    fn locate(&self, index: usize) -> (&BatchColumns, usize) {
        let batch = self.starts.partition_point(|&start| start <= index) - 1;
        (&self.batches[batch], index - self.starts[batch])
    }
}

impl CandleSeries for CandleColumns {
    fn len(&self) -> usize {
        self.len
    }

    fn candle(&self, index: usize) -> Candle {
        let (batch, row) = self.locate(index);
        batch.candle(row)
    }

    fn open_time(&self, index: usize) -> i64 {
        let (batch, row) = self.locate(index);
        batch.ts[row]
    }

    fn copy_into(&self, range: std::ops::Range<usize>, out: &mut Vec<Candle>) {
        out.clear();
        let mut index = range.start;
        while index < range.end {
            let (batch, row) = self.locate(index);
            let rows = (batch.ts.len() - row).min(range.end - index);
            batch.extend(row..row + rows, out);
            index += rows;
        }
    }

    /// Built on every core for large files: the time goes into touching
    /// fresh memory (88 MB for a million candles), which cores do side by
    /// side. (Huge pages would take it to about 10 ms, but asking for them
    /// makes the kernel compact memory first, which stalled a load for
    /// 100-200 ms at times.)
    fn to_vec(&self) -> Vec<Candle> {
        let rows = self.len;
        let mut candles = Vec::with_capacity(rows);
        let spare = &mut candles.spare_capacity_mut()[..rows];
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(rows / PARALLEL_ROWS)
            .max(1);
        let per_thread = rows.div_ceil(threads).max(1);
        let fill = |first: usize, slots: &mut [std::mem::MaybeUninit<Candle>]| {
            for (offset, slot) in slots.iter_mut().enumerate() {
                slot.write(self.candle(first + offset));
            }
        };
        // Chunks no thread could be started for (the OS refused one).
        let mut left = Vec::new();
        std::thread::scope(|scope| {
            let mut chunks = spare.chunks_mut(per_thread).enumerate();
            let first = chunks.next();
            for (index, slots) in chunks {
                let (start, len) = (index * per_thread, slots.len());
                let spawned =
                    std::thread::Builder::new().spawn_scoped(scope, move || fill(start, slots));
                if spawned.is_err() {
                    left.push(start..start + len);
                }
            }
            if let Some((_, slots)) = first {
                fill(0, slots);
            }
        });
        let spare = &mut candles.spare_capacity_mut()[..rows];
        for range in left {
            let start = range.start;
            fill(start, &mut spare[range]);
        }
        // SAFETY: the scope above ended without a panic (a panic in any
        // thread would have propagated out of it before this line), every
        // chunk was filled by its thread or, when none could be started,
        // here after it, so every one of the `rows` slots was written.
        unsafe { candles.set_len(rows) };
        candles
    }
}

/// Rows per thread below which one thread builds them all.
const PARALLEL_ROWS: usize = 250_000;

/// One price column, read where it lies when it is a 64-bit decimal (our
/// own files), converted otherwise.
enum Prices {
    Mantissas(ScalarBuffer<i64>, u32),
    Converted(Vec<Decimal>),
}

impl Prices {
    fn get(&self, row: usize) -> Decimal {
        match self {
            Prices::Mantissas(values, scale) => Decimal::new(values[row], *scale),
            Prices::Converted(values) => values[row],
        }
    }
}

/// One record batch's columns.
struct BatchColumns {
    ts: ScalarBuffer<i64>,
    /// In [`PRICE_COLUMNS`] order.
    prices: Vec<Prices>,
}

impl BatchColumns {
    /// The columns of `batch`, whose first row is row `first_row` of the
    /// file (for errors).
    fn of(batch: &RecordBatch, first_row: u64) -> Result<Self, ArrowCandleError> {
        let time = TIME_COLUMNS
            .iter()
            .find_map(|name| batch.column_by_name(name))
            .ok_or_else(|| ArrowCandleError::MissingColumn("ts".into()))?;
        let ts = millis(time)?;
        let mut prices = Vec::with_capacity(PRICE_COLUMNS.len());
        for name in PRICE_COLUMNS {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| ArrowCandleError::MissingColumn(name.into()))?;
            no_nulls(name, column)?;
            prices.push(match column.data_type() {
                DataType::Decimal64(_, scale) if (0..=18).contains(scale) => Prices::Mantissas(
                    column.as_primitive::<Decimal64Type>().values().clone(),
                    *scale as u32,
                ),
                _ => Prices::Converted(decimals(name, column, first_row)?),
            });
        }
        Ok(Self { ts, prices })
    }

    /// Append the candles of `rows` to `out`: one loop over the columns'
    /// slices when all of them are read in place (our own files).
    fn extend(&self, rows: std::ops::Range<usize>, out: &mut Vec<Candle>) {
        let [
            Prices::Mantissas(open, open_scale),
            Prices::Mantissas(high, high_scale),
            Prices::Mantissas(low, low_scale),
            Prices::Mantissas(close, close_scale),
            Prices::Mantissas(volume, volume_scale),
        ] = &self.prices[..]
        else {
            out.extend(rows.map(|row| self.candle(row)));
            return;
        };
        let columns = self.ts[rows.clone()]
            .iter()
            .zip(&open[rows.clone()])
            .zip(&high[rows.clone()])
            .zip(&low[rows.clone()])
            .zip(&close[rows.clone()])
            .zip(&volume[rows]);
        out.extend(columns.map(
            |(((((&ts, &open), &high), &low), &close), &volume)| Candle {
                ts,
                open: Decimal::new(open, *open_scale),
                high: Decimal::new(high, *high_scale),
                low: Decimal::new(low, *low_scale),
                close: Decimal::new(close, *close_scale),
                volume: Decimal::new(volume, *volume_scale),
            },
        ));
    }

    fn candle(&self, row: usize) -> Candle {
        Candle {
            ts: self.ts[row],
            open: self.prices[0].get(row),
            high: self.prices[1].get(row),
            low: self.prices[2].get(row),
            close: self.prices[3].get(row),
            volume: self.prices[4].get(row),
        }
    }
}

fn no_nulls(name: &str, column: &ArrayRef) -> Result<(), ArrowCandleError> {
    match column
        .nulls()
        .and_then(|n| (0..n.len()).find(|&i| n.is_null(i)))
    {
        Some(row) => Err(ArrowCandleError::Row {
            row: row as u64 + 1,
            reason: format!("`{name}` is empty"),
        }),
        None => Ok(()),
    }
}

/// Open times in epoch milliseconds: read where they lie when they are
/// milliseconds, converted otherwise.
fn millis(column: &ArrayRef) -> Result<ScalarBuffer<i64>, ArrowCandleError> {
    no_nulls("ts", column)?;
    let scaled = |values: &[i64], divisor: i64| {
        ScalarBuffer::from(
            values
                .iter()
                .map(|v| v.div_euclid(divisor))
                .collect::<Vec<_>>(),
        )
    };
    Ok(match column.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => column
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .clone(),
        DataType::Timestamp(TimeUnit::Second, _) => ScalarBuffer::from(
            column
                .as_primitive::<TimestampSecondType>()
                .values()
                .iter()
                .map(|s| s.saturating_mul(1000))
                .collect::<Vec<_>>(),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => scaled(
            column.as_primitive::<TimestampMicrosecondType>().values(),
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => scaled(
            column.as_primitive::<TimestampNanosecondType>().values(),
            1_000_000,
        ),
        DataType::Int64 => column.as_primitive::<Int64Type>().values().clone(),
        other => {
            return Err(ArrowCandleError::ColumnType {
                column: "ts".into(),
                found: other.to_string(),
                expected: "a timestamp or integer milliseconds",
            });
        }
    })
}

/// The decimal `mantissa` x 10^-`scale`. A column's scale pads its
/// coarser values with zeros (10 at 28 places is 10^29 x 10^-28), which
/// can take a mantissa past the 96 bits a decimal holds: those zeros are
/// dropped, and the value stays exact.
fn decimal_of(mut mantissa: i128, mut scale: u32) -> Result<Decimal, rust_decimal::Error> {
    const MAX_MANTISSA: u128 = (1 << 96) - 1;
    while mantissa.unsigned_abs() > MAX_MANTISSA && scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    Decimal::try_from_i128_with_scale(mantissa, scale)
}

/// A price column as decimals.
fn decimals(
    name: &str,
    column: &ArrayRef,
    first_row: u64,
) -> Result<Vec<Decimal>, ArrowCandleError> {
    let row_error = |row: usize, reason: String| ArrowCandleError::Row {
        row: first_row + row as u64 + 1,
        reason,
    };
    let from_float = |row: usize, value: f64| {
        if !value.is_finite() {
            return Err(row_error(row, format!("`{name}` is {value}")));
        }
        // Rust prints the shortest text that reads back as the same float.
        format!("{value}")
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&format!("{value:e}")))
            .map_err(|_| row_error(row, format!("`{name}` {value} is out of range")))
    };
    match column.data_type() {
        DataType::Decimal128(_, scale) if (0..=28).contains(scale) => {
            let scale = *scale as u32;
            column
                .as_primitive::<Decimal128Type>()
                .values()
                .iter()
                .enumerate()
                .map(|(row, &m)| {
                    decimal_of(m, scale).map_err(|e| row_error(row, format!("`{name}`: {e}")))
                })
                .collect()
        }
        DataType::Float64 => column
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .enumerate()
            .map(|(row, &v)| from_float(row, v))
            .collect(),
        DataType::Float32 => column
            .as_primitive::<Float32Type>()
            .values()
            .iter()
            .enumerate()
            .map(|(row, &v)| from_float(row, f64::from(v)))
            .collect(),
        DataType::Int64 => Ok(column
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|&v| Decimal::from(v))
            .collect()),
        DataType::Int32 => Ok(column
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&v| Decimal::from(v))
            .collect()),
        DataType::Utf8 => column
            .as_string::<i32>()
            .iter()
            .enumerate()
            .map(|(row, text)| {
                let text = text.unwrap_or_default();
                text.trim()
                    .parse()
                    .map_err(|_| row_error(row, format!("`{name}` `{text}` is not a number")))
            })
            .collect(),
        other => Err(ArrowCandleError::ColumnType {
            column: name.into(),
            found: other.to_string(),
            expected: "a decimal, float, integer or decimal string",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, TimestampNanosecondArray};
    use rust_decimal_macros::dec;

    /// A file laid out as Freqtrade writes its candles: `date` in
    /// nanoseconds, float64 prices, lz4-compressed.
    fn freqtrade_file(closes: &[f64]) -> Vec<u8> {
        let n = closes.len();
        let date = TimestampNanosecondArray::from_iter_values(
            (0..n as i64).map(|i| (1_704_067_200_000 + i * 60_000) * 1_000_000),
        )
        .with_timezone("UTC");
        let column = |values: Vec<f64>| Arc::new(Float64Array::from(values)) as ArrayRef;
        let batch = RecordBatch::try_from_iter([
            ("date", Arc::new(date) as ArrayRef),
            ("open", column(closes.to_vec())),
            ("high", column(closes.iter().map(|c| c + 1.0).collect())),
            ("low", column(closes.iter().map(|c| c - 1.0).collect())),
            ("close", column(closes.to_vec())),
            ("volume", column(vec![0.1; n])),
        ])
        .unwrap();
        let options = arrow_ipc::writer::IpcWriteOptions::default()
            .try_with_compression(Some(arrow_ipc::CompressionType::LZ4_FRAME))
            .unwrap();
        let mut out = Vec::new();
        let mut writer =
            arrow_ipc::writer::FileWriter::try_new_with_options(&mut out, &batch.schema(), options)
                .unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        out
    }

    #[test]
    fn freqtrade_feather_files_are_read_with_shortest_decimals() {
        let candles =
            read_arrow(Buffer::from_vec(freqtrade_file(&[42000.1, 42001.25, 0.3]))).unwrap();
        assert_eq!(candles.len(), 3);
        assert_eq!(candles[0].ts, 1_704_067_200_000);
        assert_eq!(candles[1].ts, 1_704_067_260_000);
        assert_eq!(candles[0].close, dec!(42000.1));
        assert_eq!(candles[0].close.to_string(), "42000.1");
        assert_eq!(candles[1].high, dec!(42002.25));
        assert_eq!(candles[2].close.to_string(), "0.3");
        assert_eq!(candles[2].volume.to_string(), "0.1");
    }

    #[test]
    fn files_large_enough_for_every_core_read_back_row_for_row() {
        let candles =
            crate::data::synthesize(&crate::data::SynthParams::new(2 * PARALLEL_ROWS + 7, 3));
        let mut bytes = Vec::new();
        write_arrow(&mut bytes, &candles, BTreeMap::new()).unwrap();
        let back = read_arrow(Buffer::from_vec(bytes)).unwrap();
        assert_eq!(back.len(), candles.len());
        assert!(back == candles, "every row in its place");
    }

    #[test]
    fn columns_read_in_place_give_every_candle_across_batches() {
        let candles = crate::data::synthesize(&crate::data::SynthParams::new(2_500, 5));
        let mut bytes = Vec::new();
        write_arrow_batches(&mut bytes, &candles, BTreeMap::new(), 1_000).unwrap();
        let columns = read_arrow_columns(Buffer::from_vec(bytes)).unwrap();
        assert_eq!(columns.batches.len(), 3);
        assert_eq!(CandleSeries::len(&columns), candles.len());
        for (index, candle) in candles.iter().enumerate() {
            assert_eq!(columns.candle(index), *candle, "candle {index}");
            assert_eq!(columns.open_time(index), candle.ts);
        }
        assert!(CandleSeries::to_vec(&columns) == candles);
        // Searching by time crosses the batches as one series.
        for index in [0, 999, 1_000, 1_001, 2_499] {
            assert_eq!(columns.first_from(candles[index].ts), index);
            assert_eq!(columns.first_from(candles[index].ts - 1), index);
        }
        assert_eq!(columns.first_from(i64::MAX), candles.len());
        // Blocks as a backtest takes them, across batch boundaries.
        let mut block = vec![candles[0]];
        for range in [950..2_100, 0..1_000, 1_999..2_000, 2_400..2_500, 7..7] {
            columns.copy_into(range.clone(), &mut block);
            assert!(block == candles[range.clone()], "{range:?}");
        }
    }

    #[test]
    fn values_of_any_precision_round_trip_exactly() {
        let candle = |ts, close: Decimal| Candle {
            ts,
            open: close,
            high: close,
            low: close,
            close,
            volume: dec!(123456789012345.123456789),
        };
        let candles = vec![candle(0, dec!(1.5)), candle(60_000, dec!(0.000000001))];
        let mut bytes = Vec::new();
        write_arrow(&mut bytes, &candles, BTreeMap::new()).unwrap();
        let back = read_arrow(Buffer::from_vec(bytes)).unwrap();
        assert_eq!(back, candles);
        // Finer than 18 places (a scale `Decimal64` cannot have), down to
        // the finest a decimal holds.
        for finest in [Decimal::new(1, 19), Decimal::new(123, 28)] {
            // 10 at the column's 28 places: a mantissa past 96 bits.
            let candles = vec![candle(0, dec!(10)), candle(60_000, finest)];
            let mut bytes = Vec::new();
            write_arrow(&mut bytes, &candles, BTreeMap::new()).unwrap();
            let back = read_arrow(Buffer::from_vec(bytes)).unwrap();
            assert_eq!(back, candles, "{finest}");
        }
        // A column whose finest value leaves no room for its largest: a
        // clear refusal, not a file no reader could take.
        let candles = vec![
            candle(0, dec!(1000000000000)),
            candle(60_000, Decimal::new(1, 28)),
        ];
        let refused = write_arrow(&mut Vec::new(), &candles, BTreeMap::new()).unwrap_err();
        assert!(
            matches!(
                refused,
                ArrowWriteError::TooManyDigits {
                    index: 0,
                    column: "open",
                    finest_index: 1,
                    ..
                }
            ),
            "{refused}"
        );
    }

    #[test]
    fn damaged_files_are_refused_not_panicked_on() {
        let whole = freqtrade_file(&[1.0, 2.0, 3.0]);
        for cut in [0, 6, 10, whole.len() / 2, whole.len() - 11, whole.len() - 1] {
            let mut damaged = whole[..cut].to_vec();
            if cut > 6 {
                damaged.extend_from_slice(&whole[whole.len() - 10..]);
            }
            assert!(
                read_arrow(Buffer::from_vec(damaged)).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = whole.clone();
        for byte in flipped.iter_mut().skip(8).step_by(7).take(64) {
            *byte ^= 0x5a;
        }
        let _ = read_arrow(Buffer::from_vec(flipped));
    }
}
