//! Plain market types shared by every layer. No I/O, no dependencies on the
//! rest of the host.

mod candle;
mod timeframe;

pub use candle::{Candle, CandleError};
pub use timeframe::{Timeframe, TimeframeError};
