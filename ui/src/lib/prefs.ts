// The operator's preferences kept in this browser: which kinds of events
// raise a toast.

import { useSyncExternalStore } from "react";

export type ToastKind = "fills" | "risk" | "state";
const KEY = "stratbox.toasts";
const listeners = new Set<() => void>();
const DEFAULTS: Record<ToastKind, boolean> = { fills: true, risk: true, state: false };

function read(): Record<ToastKind, boolean> {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY) ?? "{}") };
  } catch {
    return DEFAULTS;
  }
}

let current = typeof window === "undefined" ? DEFAULTS : read();

export function setToastKind(kind: ToastKind, on: boolean) {
  current = { ...current, [kind]: on };
  localStorage.setItem(KEY, JSON.stringify(current));
  for (const listener of listeners) listener();
}

export function toastKinds(): Record<ToastKind, boolean> {
  return current;
}

export function useToastKinds(): Record<ToastKind, boolean> {
  return useSyncExternalStore(
    (notify) => {
      listeners.add(notify);
      return () => listeners.delete(notify);
    },
    () => current,
  );
}
