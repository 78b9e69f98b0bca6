// The emergency stop: confirmation, then every bot's state as the kills
// land (from the stream), and, for admins, the release.

import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { allowed, useBots, useEmergency, useMe } from "../api/hooks";
import { keys } from "../api/keys";
import { Confirm } from "../components/Confirm";
import { ErrorText } from "../components/States";

export function EmergencyButton() {
  const [asking, setAsking] = useState(false);
  const client = useQueryClient();
  const stop = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/emergency/stop-all")),
    onSuccess: (view) => client.setQueryData(keys.emergency, view),
  });
  return (
    <>
      <button className="danger" onClick={() => setAsking(true)}>
        Emergency stop
      </button>
      {asking && (
        <Confirm
          title="Stop everything?"
          confirmLabel="Kill every bot"
          onCancel={() => setAsking(false)}
          onConfirm={() => {
            setAsking(false);
            stop.mutate();
          }}
        >
          <p>
            Every running and paused bot is killed at once: its orders are cancelled and its position is sold. No
            bot can start or be created until an admin releases the emergency stop.
          </p>
        </Confirm>
      )}
      <ErrorText error={stop.error} />
    </>
  );
}

/** While the emergency stop is engaged: which bots are still being killed. */
export function EmergencyBanner() {
  const emergency = useEmergency();
  const bots = useBots();
  const me = useMe();
  const client = useQueryClient();
  const release = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/emergency/reset")),
    onSuccess: (view) => client.setQueryData(keys.emergency, view),
  });
  if (!emergency.data?.engaged) return null;
  const live = (bots.data ?? []).filter((bot) => bot.state === "running" || bot.state === "paused");
  return (
    <section className="banner banner-bad" aria-label="Emergency stop">
      <strong>Emergency stop engaged.</strong>{" "}
      {live.length === 0 ? (
        <span>Every bot is stopped.</span>
      ) : (
        <span>
          Killing {live.length} bot{live.length === 1 ? "" : "s"}: {live.map((b) => `${b.id} (${b.state})`).join(", ")}
        </span>
      )}
      {allowed(me.data, "POST /api/v1/emergency/reset") ? (
        <button onClick={() => release.mutate()} disabled={release.isPending}>
          Release
        </button>
      ) : (
        <span> No bot can start until an admin releases it.</span>
      )}
      <ErrorText error={release.error} />
    </section>
  );
}
