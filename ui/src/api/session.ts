// The operator's token: entered once, kept in session storage (gone when
// the tab closes), dropped the moment the server says it is no longer
// valid (a 401 from any call, or the event stream closed as revoked).

import { useSyncExternalStore } from "react";

const KEY = "stratbox.token";
const listeners = new Set<() => void>();

function read(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

let current = read();
let reason: string | null = null;

function emit() {
  for (const listener of listeners) listener();
}

export const session = {
  token(): string | null {
    return current;
  },
  signIn(token: string) {
    reason = null;
    current = token.trim();
    sessionStorage.setItem(KEY, current);
    emit();
  },
  /** The token is gone: back to the login screen (saying why, if the
   * server ended the session). */
  signOut(why: string | null = null) {
    if (current === null) return;
    reason = why;
    current = null;
    sessionStorage.removeItem(KEY);
    emit();
  },
  /** Why the last session ended, if the server ended it. */
  reason(): string | null {
    return reason;
  },
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

/** The token, re-rendering when it changes. */
export function useToken(): string | null {
  return useSyncExternalStore(session.subscribe, session.token, session.token);
}
