// Dark and light themes: CSS variables switched by `data-theme` on <html>,
// the choice kept in local storage (default: the system's preference).

import { useSyncExternalStore } from "react";

export type Theme = "dark" | "light";
const KEY = "stratbox.theme";
const listeners = new Set<() => void>();

function initial(): Theme {
  const stored = localStorage.getItem(KEY);
  if (stored === "dark" || stored === "light") return stored;
  return window.matchMedia?.("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

let current: Theme = typeof window === "undefined" ? "dark" : initial();

export function applyTheme(theme: Theme = current) {
  current = theme;
  document.documentElement.dataset.theme = theme;
  localStorage.setItem(KEY, theme);
  for (const listener of listeners) listener();
}

export function useTheme(): [Theme, () => void] {
  const theme = useSyncExternalStore(
    (notify) => {
      listeners.add(notify);
      return () => listeners.delete(notify);
    },
    () => current,
  );
  return [theme, () => applyTheme(theme === "dark" ? "light" : "dark")];
}
