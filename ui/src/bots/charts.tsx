// Charts of a bot: candles with its entries, exits and resting orders
// marked; equity with its drawdown underneath. lightweight-charts draws
// them; decimal strings become numbers only here, for the pixels.

import { useEffect, useRef } from "react";
import {
  BaselineSeries,
  CandlestickSeries,
  ColorType,
  LineSeries,
  createChart,
  createSeriesMarkers,
  type AutoscaleInfo,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Schemas } from "../api/client";
import { useTheme } from "../lib/theme";
import { BUY, SELL, fillMarkers, seconds } from "./markers";

type Candle = Schemas["CandleView"];
type Fill = Schemas["FillView"];
type Order = Schemas["OrderView"];
type EquityPoint = Schemas["EquityPointView"];

function colours(theme: string) {
  return theme === "light"
    ? { text: "#1d2433", grid: "#e5e8ef", background: "#ffffff" }
    : { text: "#d4d8e2", grid: "#262c3a", background: "#151923" };
}

/** A chart that lives as long as its element and follows the theme. */
function useChart(height: number) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const [theme] = useTheme();
  useEffect(() => {
    if (!element.current) return;
    chart.current = createChart(element.current, { height, autoSize: true });
    return () => {
      chart.current?.remove();
      chart.current = null;
    };
  }, [height]);
  useEffect(() => {
    const c = colours(theme);
    chart.current?.applyOptions({
      layout: { background: { type: ColorType.Solid, color: c.background }, textColor: c.text },
      grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
      timeScale: { timeVisible: true },
    });
  }, [theme]);
  return { element, chart };
}

export function CandleChart({ candles, fills, orders }: { candles: Candle[]; fills: Fill[]; orders: Order[] }) {
  const { element, chart } = useChart(320);
  const series = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const lines = useRef<IPriceLine[]>([]);
  const markers = useRef<ISeriesMarkersPluginApi<Time> | null>(null);

  useEffect(() => {
    if (!chart.current) return;
    series.current = chart.current.addSeries(CandlestickSeries, {});
    markers.current = createSeriesMarkers(series.current, []);
    return () => {
      series.current = null;
      markers.current = null;
    };
  }, [chart]);

  useEffect(() => {
    series.current?.setData(
      candles.map((c) => ({
        time: seconds(c.at),
        open: Number(c.open),
        high: Number(c.high),
        low: Number(c.low),
        close: Number(c.close),
      })),
    );
    chart.current?.timeScale().fitContent();
  }, [candles]);

  useEffect(() => {
    if (!series.current || !markers.current) return;
    const shown =
      candles.length > 0 ? fillMarkers(fills, candles[0].at, candles[candles.length - 1].at) : [];
    markers.current.setMarkers(shown);
    for (const line of lines.current) series.current.removePriceLine(line);
    lines.current = orders
      .filter((order) => order.price)
      .map((order) =>
        series.current!.createPriceLine({
          price: Number(order.price),
          color: order.side === "buy" ? BUY : SELL,
          lineStyle: 2,
          title: `${order.kind} ${order.side} ${order.quantity}`,
        }),
      );
  }, [candles, fills, orders]);

  return <div ref={element} className="chart" aria-label="Candles with fills and resting orders" />;
}

/** Equity over its whole history (the drawdown needs every peak), shown
 * from `since` on: the first candle of the chart above, so both cover the
 * same time (the equity trail reaches further back than the candles). */
export function EquityChart({ points, since }: { points: EquityPoint[]; since?: string }) {
  const { element, chart } = useChart(220);
  const equity = useRef<ISeriesApi<"Line"> | null>(null);
  const drawdown = useRef<ISeriesApi<"Baseline"> | null>(null);

  useEffect(() => {
    if (!chart.current) return;
    equity.current = chart.current.addSeries(LineSeries, { color: "#4c8dff", lineWidth: 2 });
    chart.current.priceScale("right").applyOptions({ scaleMargins: { top: 0.08, bottom: 0.32 } });
    // Drawdown in percent below its own zero line, in the bottom quarter.
    drawdown.current = chart.current.addSeries(BaselineSeries, {
      priceScaleId: "drawdown",
      baseValue: { type: "price", price: 0 },
      topLineColor: "rgba(0,0,0,0)",
      topFillColor1: "rgba(0,0,0,0)",
      topFillColor2: "rgba(0,0,0,0)",
      bottomLineColor: "#f6465d",
      bottomFillColor1: "rgba(246,70,93,0.05)",
      bottomFillColor2: "rgba(246,70,93,0.35)",
      priceFormat: { type: "custom", formatter: (value: number) => `${value.toFixed(2)} %` },
      // The zero line stays in view: without it the fill ran from the
      // drawdown up to an off-scale zero, across the whole pane.
      autoscaleInfoProvider: (original: () => AutoscaleInfo | null) => {
        const info = original();
        if (info?.priceRange) info.priceRange.maxValue = Math.max(0, info.priceRange.maxValue);
        return info;
      },
    });
    chart.current.priceScale("drawdown").applyOptions({ scaleMargins: { top: 0.75, bottom: 0 } });
  }, [chart]);

  useEffect(() => {
    let peak = -Infinity;
    const line = [];
    const under = [];
    let last = -1;
    for (const point of points) {
      const time = seconds(point.at);
      if (time <= last) continue; // one point per second at most
      last = time;
      const value = Number(point.equity);
      peak = Math.max(peak, value);
      line.push({ time, value });
      under.push({ time, value: peak > 0 ? ((value - peak) / peak) * 100 : 0 });
    }
    equity.current?.setData(line);
    drawdown.current?.setData(under);
    const from = since === undefined ? undefined : seconds(since);
    if (from !== undefined && line.length > 0 && from > line[0].time && from < last) {
      chart.current?.timeScale().setVisibleRange({ from, to: last as UTCTimestamp });
    } else {
      chart.current?.timeScale().fitContent();
    }
  }, [points, since]);

  return <div ref={element} className="chart" aria-label="Equity and drawdown" />;
}
