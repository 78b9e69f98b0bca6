// Toasts for fills, risk events and (optionally) state changes, as they
// arrive on the stream (each kind can be turned off in Settings), and for
// what the operator's own actions did (`notify`).

import { useCallback, useEffect, useState } from "react";
import { useEvents } from "../api/streamContext";
import type { Envelope } from "../api/stream";
import { formatDecimal } from "../lib/decimal";
import { readingOfLimit, ruleName } from "../lib/risk";
import { toastKinds } from "../lib/prefs";

interface Toast {
  id: number;
  tone: "info" | "good" | "bad";
  text: string;
  /** A bot's fill toasts share a group: each replaces the one before. */
  group?: string;
  /** How many fills of its group this toast stands for. */
  count?: number;
}

const SHOWN_MS = 6_000;
const MAX_SHOWN = 3;

/** The toasts shown once `toast` arrives: it replaces one of its group
 * (counting it), and only the newest MAX_SHOWN stay, so a busy bot's fills
 * do not stack over the page. */
export function withToast(shown: Toast[], toast: Toast): Toast[] {
  const earlier = toast.group ? shown.find((t) => t.group === toast.group) : undefined;
  const count = (earlier?.count ?? (earlier ? 1 : 0)) + 1;
  const others = earlier ? shown.filter((t) => t !== earlier) : shown;
  return [...others, { ...toast, count }].slice(-MAX_SHOWN);
}
let nextId = 1;
const shouters = new Set<(toast: Omit<Toast, "id">) => void>();

/** Show a toast for something the operator did ("Applied as v4"). */
export function notify(tone: Toast["tone"], text: string) {
  for (const shout of shouters) shout({ tone, text });
}

/** The toast an event raises, if its kind is on. */
export function toastFor(event: Envelope): Omit<Toast, "id"> | null {
  const kinds = toastKinds();
  const bot = event.bot_id ?? "host";
  switch (event.type) {
    case "order.filled":
      if (!kinds.fills) return null;
      return {
        tone: "info",
        text: `${bot}: ${event.data.fill.side} ${formatDecimal(event.data.fill.quantity, 5)} @ ${formatDecimal(event.data.fill.price)}`,
        group: `fills:${bot}`,
      };
    case "risk.violation":
      return kinds.risk
        ? {
            tone: "bad",
            text: `${bot}: ${ruleName(event.data.rule)} breached (${readingOfLimit(event.data)})`,
          }
        : null;
    case "risk.kill_switch":
      return kinds.risk ? { tone: "bad", text: `${bot}: kill-switch — ${event.data.reason}` } : null;
    case "bot.state_changed":
      return kinds.state ? { tone: "info", text: `${bot}: ${event.data.from} → ${event.data.to}` } : null;
    case "emergency.engaged":
      return { tone: "bad", text: `Emergency stop engaged by ${event.data.by}` };
    default:
      return null;
  }
}

export function Toasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const show = useCallback((toast: Omit<Toast, "id">) => {
    const id = nextId++;
    setToasts((shown) => withToast(shown, { ...toast, id }));
    setTimeout(() => setToasts((shown) => shown.filter((t) => t.id !== id)), SHOWN_MS);
  }, []);
  const listener = useCallback(
    (event: Envelope) => {
      const toast = toastFor(event);
      if (toast) show(toast);
    },
    [show],
  );
  useEvents(listener);
  useEffect(() => {
    shouters.add(show);
    return () => {
      shouters.delete(show);
    };
  }, [show]);
  return (
    <div className="toasts" role="status" aria-live="polite">
      {toasts.map((toast) => (
        <div key={toast.id} className={`toast toast-${toast.tone}`}>
          {toast.text}
          {(toast.count ?? 1) > 1 && <small> ({toast.count} fills)</small>}
        </div>
      ))}
    </div>
  );
}
