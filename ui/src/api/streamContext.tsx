// The event stream as React sees it: one `EventStream` for the app, the
// views that follow parts of it, and its health.

import { createContext, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { EventStream, type Envelope, type Interest, type StreamHealth } from "./stream";

const StreamContext = createContext<EventStream | null>(null);

function socketUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/api/v1/ws`;
}

export function StreamProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const stream = useMemo(() => new EventStream(client, socketUrl()), [client]);
  useEffect(() => {
    stream.start();
    return () => stream.stop();
  }, [stream]);
  return <StreamContext.Provider value={stream}>{children}</StreamContext.Provider>;
}

export function useStream(): EventStream {
  const stream = useContext(StreamContext);
  if (!stream) throw new Error("useStream outside StreamProvider");
  return stream;
}

/** Follow `interest` while the calling view is shown. */
export function useFollow(name: string, interest: Interest | null) {
  const stream = useStream();
  const key = interest ? JSON.stringify(interest) : "";
  useEffect(() => {
    if (!interest) return;
    return stream.follow(name, interest);
    // The interest is compared by value (key).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stream, name, key]);
}

/** Call `listener` with every event while the calling view is shown. */
export function useEvents(listener: (event: Envelope) => void) {
  const stream = useStream();
  useEffect(() => stream.onEvent(listener), [stream, listener]);
}

export function useStreamHealth(): StreamHealth {
  const stream = useStream();
  return useSyncExternalStore(
    (notify) => stream.onHealth(notify),
    () => stream.health,
  );
}
