// A small equity line. Drawn from decimal strings: the conversion to
// numbers is for the pixels only.

export function Sparkline({ values, width = 96, height = 24 }: { values: string[]; width?: number; height?: number }) {
  const points = values.map(Number).filter(Number.isFinite);
  if (points.length < 2) return <svg width={width} height={height} aria-hidden="true" />;
  const low = Math.min(...points);
  const high = Math.max(...points);
  const span = high - low || 1;
  const path = points
    .map((value, index) => {
      const x = (index / (points.length - 1)) * (width - 2) + 1;
      const y = height - 1 - ((value - low) / span) * (height - 2);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
  const rising = points[points.length - 1] >= points[0];
  return (
    <svg width={width} height={height} className={rising ? "spark up" : "spark down"} aria-label="recent equity">
      <polyline points={path} fill="none" strokeWidth="1.5" />
    </svg>
  );
}
