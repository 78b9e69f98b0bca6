// Data sets: what is stored (range, count, gaps, size), upload a candle
// file (the server checks it whole and names a bad line), download one as
// CSV, delete one.

import { useState } from "react";
import { fetchBlob } from "../api/client";
import { allowed, useDataSets, useDeleteDataSet, useMe, useUploadDataSet, type DataSet } from "../api/hooks";
import { Confirm } from "../components/Confirm";
import { Empty, ErrorText, Loading } from "../components/States";
import { notify } from "../components/Toasts";
import { formatBytes } from "../lib/bytes";
import { formatTime } from "../lib/time";

/** Save a data set's CSV: fetched with the token, handed to the browser as a file. */
async function download(set: DataSet) {
  const blob = await fetchBlob(`/api/v1/data/${set.symbol}/${set.timeframe}`);
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `${set.symbol}_${set.timeframe}.csv`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  // Freed once the browser has taken the file.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function Upload() {
  const upload = useUploadDataSet();
  const [file, setFile] = useState<File | null>(null);
  const [symbol, setSymbol] = useState("");
  const [timeframe, setTimeframe] = useState("1m");
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    if (!file) return;
    upload.mutate(
      { symbol: symbol.trim().toUpperCase(), timeframe: timeframe.trim(), file },
      { onSuccess: (set) => notify("good", `${set.symbol}/${set.timeframe}: ${set.count.toLocaleString()} candles stored`) },
    );
  };
  return (
    <form className="upload" onSubmit={submit} aria-label="Upload a data set">
      <h2>Upload</h2>
      <p className="muted">
        Our CSV (<code>ts,open,high,low,close,volume</code>), Binance kline CSV, or an Arrow IPC / Feather file. It replaces the data set
        of the same symbol and timeframe; a bad file is refused with its line and nothing is stored.
      </p>
      <label>
        File <input aria-label="File" type="file" accept=".csv,.arrow,.feather,.ipc" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      </label>
      <label>
        Symbol <input aria-label="Symbol" value={symbol} placeholder="BTCUSDT" onChange={(e) => setSymbol(e.target.value)} />
      </label>
      <label>
        Timeframe <input aria-label="Timeframe" value={timeframe} onChange={(e) => setTimeframe(e.target.value)} />
      </label>
      <button className="primary" type="submit" disabled={!file || !symbol || upload.isPending}>
        {upload.isPending ? "Uploading…" : "Upload"}
      </button>
      <ErrorText error={upload.error} />
    </form>
  );
}

export function DataPage() {
  const me = useMe();
  const sets = useDataSets();
  const remove = useDeleteDataSet();
  const [deleting, setDeleting] = useState<DataSet | null>(null);
  const [failed, setFailed] = useState<unknown>(null);
  if (sets.isLoading) return <Loading what="data sets" />;
  const items = sets.data?.items ?? [];
  return (
    <section className="research" aria-label="Data sets">
      <header className="page-head">
        <h1>Data sets</h1>
      </header>
      <ErrorText error={sets.error ?? remove.error ?? failed} />
      {items.length === 0 ? (
        <Empty>No data set yet.</Empty>
      ) : (
        <table className="data data-sets">
          <thead>
            <tr>
              <th>Data set</th>
              <th>First candle</th>
              <th>Last candle</th>
              <th>Candles</th>
              <th>Gaps</th>
              <th>Size</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((set) => (
              <tr key={`${set.symbol}/${set.timeframe}`}>
                <td>
                  {set.symbol}/{set.timeframe}
                </td>
                <td>{formatTime(set.first)}</td>
                <td>{formatTime(set.last)}</td>
                <td className="num">{set.count.toLocaleString()}</td>
                <td className="num" title={set.gaps.missing ? `${set.gaps.missing.toLocaleString()} candles missing` : "none"}>
                  {set.gaps.count}
                </td>
                <td className="num">{formatBytes(set.size_bytes)}</td>
                <td>
                  <button className="small" onClick={() => download(set).catch(setFailed)}>
                    download CSV
                  </button>{" "}
                  {allowed(me.data, "DELETE /api/v1/data/{symbol}/{timeframe}") && (
                    <button className="small" onClick={() => setDeleting(set)}>
                      delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {allowed(me.data, "POST /api/v1/data") && <Upload />}
      {deleting && (
        <Confirm
          title={`Delete ${deleting.symbol}/${deleting.timeframe}?`}
          confirmLabel="Delete"
          onCancel={() => setDeleting(null)}
          onConfirm={() => {
            remove.mutate({ symbol: deleting.symbol, timeframe: deleting.timeframe });
            setDeleting(null);
          }}
        >
          Its {deleting.count.toLocaleString()} candles are removed; backtests made from it keep their results.
        </Confirm>
      )}
    </section>
  );
}
